"""Does an S3- or Azure-compatible endpoint honour conditional writes?

Some S3-compatible servers accept If-None-Match and If-Match and ignore them (a known
cause of silently broken Terraform locking). Before trusting conditional writes on an
endpoint, dlock tries them once on a scratch object (a second create-only write must
fail, a replace of a version that never was must fail) and remembers the answer for
that endpoint for a day, in this process and in the user's cache directory. AWS and Azure
themselves are trusted without a probe.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import warnings
from pathlib import Path

from dlock.errors import DLockError
from dlock.stores.base import AlreadyExists, Conflict, NotAtomicWarning, Store, Stored

PROBE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dlock" / "conditional-writes.json"
PROBE_MAX_AGE = 86400.0

# endpoint -> honoured, for this process: the one piece of global state beside the registry.
_PROBES: dict[str, bool] = {}


def honours_conditions(store: Store, dataset: str, endpoint: str) -> bool:
    """Whether `endpoint` honours create-if-absent and replace-if-unchanged, probed under
    `dataset` through `store` the first time and remembered."""
    if _trusted(endpoint):
        return True
    honoured = _cached(endpoint)
    if honoured is None:
        try:
            honoured = probe(store, dataset)
        except DLockError:
            return True  # the real operation will report the store's error itself
        _remember(endpoint, honoured)
    return honoured


def probe(store: Store, dataset: str) -> bool:
    """Try both conditions on a scratch object beside the dataset, then remove it."""
    scratch = f"{dataset.rstrip('/')}/.dlock-probe-{secrets.token_hex(6)}"
    try:
        store.create(scratch, b"1")
        try:
            store.create(scratch, b"2")
            return False
        except AlreadyExists:
            pass
        try:
            store.replace(scratch, b"3", Stored(b"", '"0000"', None))
            return False
        except Conflict:
            return True
    finally:
        with contextlib.suppress(Exception):
            store.delete_data(scratch)  # unconditional: whatever the probe left there goes


def ignores_conditions(store: Store, dataset: str, endpoint: str, service: str) -> bool:
    """The probe's verdict, with the warning a user sees when `endpoint` ignores the conditions."""
    if honours_conditions(store, dataset, endpoint):
        return False
    warnings.warn(
        f"{endpoint} ignores {service} conditional writes (If-None-Match/If-Match), so dlock falls back to "
        "Deep Lake's write-wait-verify protocol there; two machines racing could both take the lock.",
        NotAtomicWarning,
        stacklevel=3,
    )
    return True


# The clouds themselves honour If-None-Match and If-Match: AWS, and Azure's public and national clouds.
TRUSTED_HOSTS = (".amazonaws.com", ".core.windows.net", ".core.chinacloudapi.cn", ".core.usgovcloudapi.net")


def _trusted(endpoint: str) -> bool:
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.endswith(TRUSTED_HOSTS)


def _cached(endpoint: str) -> bool | None:
    if endpoint in _PROBES:
        return _PROBES[endpoint]
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        entry = json.loads(PROBE_CACHE.read_text())[endpoint]
        if time.time() - float(entry["checked"]) < PROBE_MAX_AGE:
            _PROBES[endpoint] = bool(entry["conditional"])
            return _PROBES[endpoint]
    return None


def _remember(endpoint: str, honoured: bool) -> None:
    _PROBES[endpoint] = honoured
    with contextlib.suppress(OSError, ValueError):
        PROBE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        try:
            cache = json.loads(PROBE_CACHE.read_text())
        except (OSError, ValueError):
            cache = {}
        cache[endpoint] = {"conditional": honoured, "checked": time.time()}
        temp = PROBE_CACHE.with_suffix(f".{secrets.token_hex(4)}.tmp")
        temp.write_text(json.dumps(cache))
        os.replace(temp, PROBE_CACHE)  # whole or not at all, for a dlock process reading it now
