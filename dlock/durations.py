"""Durations as operators type them: 90, 90s, 1.5m, 10m, 2h, 1d."""

from __future__ import annotations

import math
import re

from dlock.errors import UsageError

_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d|)\s*$", re.IGNORECASE)


def parse_duration(text: str | float | int, *, what: str = "duration", allow_forever: bool = False) -> float:
    """Seconds from `text`; -1 means forever where `allow_forever` is set."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _PATTERN.match(text)
        if not match:
            raise UsageError(f"{what} {text!r} is not a duration; use a number of seconds or 90s, 10m, 2h, 1d.")
        value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if allow_forever and value == -1:
        return -1.0
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{what} {text!r} must be zero or more" + (" (or -1 for forever)." if allow_forever else "."))
    return value


def format_duration(seconds: float) -> str:
    """Short human form: 45s, 4 min, 2 h 5 min, 3 d."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours:.0f} h {rest / 60:.0f} min" if rest >= 60 else f"{hours:.0f} h"
    return f"{seconds / 86400:.1f} d"
