"""`dlock --version`: dlock's version and its backend libraries', answered before the app is
built (it needs neither typer nor the lock code)."""

from __future__ import annotations

import os
import sys

from dlock._version import __version__

BACKEND_LIBRARIES = ("typer", "click", "rich", "fsspec", "s3fs", "gcsfs", "adlfs", "kazoo", "redis")


def version_lines() -> list[str]:
    installed = _installed_metadata()
    found = (f"{name} {_metadata_version(installed[name])}" if name in installed else f"{name} (not installed)"
             for name in BACKEND_LIBRARIES)
    return [f"dlock {__version__}", ", ".join(found)]


def print_version() -> None:
    from dlock.cli.escape import printable

    for line in version_lines():
        print(printable(line))


def _installed_metadata() -> dict[str, str]:
    """Each distribution's metadata file, first on sys.path winning, as importlib.metadata
    finds them; one directory listing per path entry instead of importlib.metadata's 12 ms
    import (importing the libraries themselves would cost far more: s3fs alone 0.4 s)."""
    wanted = set(BACKEND_LIBRARIES)
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for item in names:
            stem, dot, suffix = item.rpartition(".")
            if suffix not in ("dist-info", "egg-info") or not dot:
                continue
            name = stem.split("-", 1)[0].lower().replace(".", "_").replace("-", "_")
            if name in wanted and name not in found:
                metadata = "METADATA" if suffix == "dist-info" else "PKG-INFO"
                found[name] = os.path.join(entry or ".", item, metadata)
    return found


def _metadata_version(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip()[:64]
                if not line.strip():  # the headers end at the first blank line
                    break
    except OSError:
        pass
    return "(version unknown)"
