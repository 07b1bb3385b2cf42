"""TARGET -> backend, in one place: the one registry of URL schemes.

A scheme names the opener of its store ("module:function"), imported only when a
target needs it, which is how `dlock status ./ds` stays free of s3fs, gcsfs, adlfs, kazoo,
redis and boto. Every store keeps lock files, so the lock-file backend is built here, once; a lock
service (ZooKeeper) opens its own backend. As in fsspec's registry, a scheme may name how
to install the library it needs, shown when that library is missing.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Callable, Mapping, cast

from dlock.backends.base import Backend, Options
from dlock.backends.lockfile import LockFileBackend
from dlock.errors import UsageError
from dlock.stores.base import Store

StoreOpener = Callable[[str, Mapping[str, str]], tuple[Store, str]]  # (location, storage options) -> (store, path)
BackendOpener = Callable[[str, str, Options], Backend]  # (target, location, options) -> backend


@dataclasses.dataclass(frozen=True)
class Scheme:
    opener: str  # "module:function": a StoreOpener, or a BackendOpener for a lock service
    install: str | None = None  # how to get the library the opener needs
    lock_service: bool = False  # the opener builds its own Backend: no lock files, no Store
    session_bound: bool = False  # a lock lives only as long as its holder's session: no plain `acquire`


REGISTRY: dict[str, Scheme] = {
    "file": Scheme("dlock.stores.local:open_store"),
    "memory": Scheme("dlock.stores.memory:open_store"),
    "s3": Scheme("dlock.stores.s3:open_store", "pip install s3fs"),
    "s3a": Scheme("dlock.stores.s3:open_store", "pip install s3fs"),
    "gs": Scheme("dlock.stores.gcs:open_store", "pip install gcsfs"),
    "gcs": Scheme("dlock.stores.gcs:open_store", "pip install gcsfs"),
    "az": Scheme("dlock.stores.azure:open_store", "pip install 'dlock[azure]'"),
    "abfs": Scheme("dlock.stores.azure:open_store", "pip install 'dlock[azure]'"),
    "abfss": Scheme("dlock.stores.azure:open_store", "pip install 'dlock[azure]'"),
    "zk": Scheme("dlock.backends.zookeeper:open_backend", "pip install kazoo", lock_service=True, session_bound=True),
    "redis": Scheme("dlock.backends.redis:open_backend", "pip install redis", lock_service=True),
    "rediss": Scheme("dlock.backends.redis:open_backend", "pip install redis", lock_service=True),
}
# Any other URL: fsspec's filesystem for it, with Deep Lake's write-wait-verify protocol.
FALLBACK = Scheme("dlock.stores.fsspec:open_store")

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
    return REGISTRY.get(scheme_of(target), FALLBACK).session_bound


def open_backend(target: str, options: Options | None = None) -> Backend:
    options = options or Options()
    scheme = scheme_of(target)
    entry = REGISTRY.get(scheme, FALLBACK)
    if entry.lock_service:
        open_service = cast(BackendOpener, _load(scheme, entry))
        return open_service(target, target, options)
    open_store = cast(StoreOpener, _load(scheme, entry))
    store, path = open_store(target, options.storage_options)
    return LockFileBackend(store, path, target, options)


def _load(scheme: str, entry: Scheme) -> object:
    """The opener the entry names (its signature is the registry's promise, see Scheme)."""
    module_name, _, function_name = entry.opener.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if entry.install is None or (exc.name or "dlock").startswith("dlock"):
            raise
        raise UsageError(f"{scheme}:// targets need the {exc.name} library, which is not installed: {entry.install}.") from exc
    return getattr(module, function_name)
