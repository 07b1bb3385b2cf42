"""TARGET -> backend, in one place. A backend module is imported only when a target needs it,
which is how `dlock status ./ds` stays free of s3fs, gcsfs, kazoo and boto."""

from __future__ import annotations

import importlib
import re
from typing import Callable

from dlock.backends.base import Backend, Options
from dlock.errors import UsageError

# scheme -> "module:function"; the function takes (target, location, options).
REGISTRY: dict[str, str] = {
    "file": "dlock.backends.local:open_backend",
    "memory": "dlock.backends.memory:open_backend",
    "s3": "dlock.backends.objectstore:open_s3",
    "s3a": "dlock.backends.objectstore:open_s3",
    "gs": "dlock.backends.objectstore:open_gcs",
    "gcs": "dlock.backends.objectstore:open_gcs",
    "zk": "dlock.backends.zookeeper:open_backend",
}
FALLBACK = "dlock.backends.objectstore:open_generic"
# Schemes whose locks live only as long as the holder's session: no plain `acquire`.
SESSION_BOUND = frozenset({"zk"})

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_ALMOST_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/*(?!/)")


def scheme_of(target: str) -> str:
    """The URL scheme, "file" for plain paths. A near-URL such as s3:/b/ds is a usage error,
    never a local directory named "s3:"."""
    if not target or not target.strip():
        raise UsageError("an empty TARGET names nothing; give a dataset path or URL.")
    match = _URL.match(target)
    if match:
        return match.group(1).lower()
    near = _ALMOST_URL.match(target)
    if near and near.group(1).lower() in REGISTRY:
        scheme, rest = near.group(1), target[near.end():]
        # file: URLs carry an absolute path after the "//": file:/tmp means file:///tmp.
        meant = f"{scheme}:///{rest}" if scheme.lower() == "file" else f"{scheme}://{rest}"
        raise UsageError(f"{target!r} is not a valid URL; did you mean {meant}?")
    return "file"


def session_bound(target: str) -> bool:
    """Does a lock of `target` end with the process that holds it (ZooKeeper)?"""
    return scheme_of(target) in SESSION_BOUND


def open_backend(target: str, options: Options | None = None) -> Backend:
    scheme = scheme_of(target)
    spec = REGISTRY.get(scheme, FALLBACK)
    module_name, _, function_name = spec.partition(":")
    opener: Callable[[str, str, Options], Backend] = getattr(importlib.import_module(module_name), function_name)
    return opener(target, target, options or Options())
