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


# Bounds on a lock's ttl: below a second the refresh (at 40 %) cannot keep up with a
# store's latency; above 30 days a lock outlives anyone who would remember taking it.
MIN_TTL = 1.0
MAX_TTL = 30 * 86400.0


def check_ttl(value: object, *, what: str = "ttl") -> float:
    """A ttl in seconds within [MIN_TTL, MAX_TTL], or UsageError naming the bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not (math.isfinite(value) and MIN_TTL <= value <= MAX_TTL):
        raise UsageError(f"{what} {value!r} is out of range; a lock's ttl is 1 s to 30 d.")
    return float(value)


def check_timeout(value: object, *, what: str = "timeout") -> float:
    """0 tries once, a positive number waits that long, -1 (or None) waits forever."""
    if value is None:
        return -1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or None, not {type(value).__name__}")
    if value == -1 or (math.isfinite(value) and value >= 0):
        return float(value)
    raise UsageError(f"{what} {value!r} must be zero or more seconds, or -1 to wait forever.")


def format_duration(seconds: float) -> str:
    """Short human form: 45s, 4 min, 2 h 5 min, 3 d."""
    seconds = abs(seconds)
    if seconds >= 100 * 365 * 86400:
        return "over 100 years"
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours:.0f} h {rest / 60:.0f} min" if rest >= 60 else f"{hours:.0f} h"
    return f"{seconds / 86400:.1f} d"
