"""Judging one lock file: what its bytes say, at a given moment (absent, held, stale, corrupt).

Deep Lake 3.9 stores the expiry (write time + 300 s); older 3.x releases wrote a 14-byte
file holding the write time and treated it as valid for 300 s.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

from dlock import codec
from dlock.backends.layout import LockFile
from dlock.stores.base import Stored
from dlock.durations import MAX_TTL, format_duration
from dlock.errors import CorruptLock
from dlock.identity import fence_of, holder_from_payload, number, pid_alive
from dlock.model import Holder, LockInfo, State

# No lock lives longer than the longest ttl dlock writes; a time further ahead is garbage.
MAX_AHEAD = MAX_TTL + 86400.0


def judge_lock(lock: LockFile, stored: Stored | None, validity: float | None, now: float | None = None) -> LockInfo:
    """What a lock file says, judged at `now`: absent, held, stale or corrupt."""
    base = LockInfo(path=lock.path, state=State.ABSENT, version=lock.version, branch=lock.branch)
    if stored is None:
        return base
    now = time.time() if now is None else now
    fingerprint = _fingerprint(stored)
    corrupt = dataclasses.replace(base, state=State.CORRUPT, store_modified=stored.modified, fingerprint=fingerprint)
    if stored.odd:
        return dataclasses.replace(corrupt, reason=f"it is {stored.odd}, not a lock file")
    if stored.size is not None:
        return dataclasses.replace(corrupt, reason=f"{stored.size} bytes, far more than any lock file")
    try:
        record = codec.decode(stored.data)
    except CorruptLock as exc:
        return dataclasses.replace(corrupt, reason=str(exc))
    expires_at, written_at, ttl = _times(record, validity)
    if expires_at - now > MAX_AHEAD:
        return dataclasses.replace(
            corrupt, reason=f"its time lies {format_duration(expires_at - now)} ahead; no lock lives that long"
        )
    state = State.HELD if expires_at > now else State.STALE
    holder = _holder(record)
    skew = written_at - stored.modified if (stored.modified is not None and written_at is not None) else None
    return dataclasses.replace(
        base,
        state=state,
        format=record.format,
        holder=holder,
        expires_at=expires_at,
        written_at=written_at,
        age=None if written_at is None else now - written_at,
        ttl=ttl,
        store_modified=stored.modified,
        clock_skew=skew,
        warning=_unprotected_warning(state, holder, record),
        fingerprint=fingerprint,
        fence=fence_of((record.payload or {}).get("fence")),
    )


def _times(record: codec.LockRecord, validity: float | None) -> tuple[float, float | None, float | None]:
    """(expires_at, written_at, ttl): Deep Lake 3.9 and dlock store the expiry, older Deep Lake 3.x
    the write time, valid for 300 s (or the validity given)."""
    if not record.time_is_expiry:
        validity = validity or codec.DEEPLAKE_TTL
        return record.time + validity, record.time, validity
    payload = record.payload or {}
    ttl = number(payload.get("ttl"))
    written = number(payload.get("written"))
    if record.payload is None and record.format == "deeplake-3.9":
        ttl = codec.DEEPLAKE_TTL
    if written is None and ttl is not None:
        written = record.time - ttl
    return record.time, written, ttl


def owner_of(stored: Stored | None) -> str | None:
    """The owner token in a lock file dlock wrote, else None."""
    if stored is None:
        return None
    try:
        return codec.decode(stored.data).owner_token
    except CorruptLock:
        return None


def same_holder(seen: LockInfo, now: LockInfo) -> bool:
    """The lock the user was shown, perhaps refreshed since (a refresh keeps the holder)."""
    if seen.holder is None or now.holder is None:
        return seen.fingerprint == now.fingerprint
    identity = ("node_id", "pid", "host", "created", "tool")
    return all(getattr(seen.holder, field) == getattr(now.holder, field) for field in identity)


def _fingerprint(stored: Stored) -> str:
    import hashlib

    return hashlib.sha256(stored.data + repr(stored.version).encode()).hexdigest()[:16]


def _holder(record: codec.LockRecord) -> Holder:
    base = Holder(node_id=codec.format_node_id(record.node_id),
                  tool="deeplake" if record.format.startswith("deeplake") else None)
    if record.payload is not None:
        return holder_from_payload(record.payload, base)
    # Deep Lake compares uuid.getnode(), and so do we.
    this_machine = record.node_id == uuid.getnode()
    pid = record.pid
    return dataclasses.replace(base, this_machine=this_machine, pid=pid,
                               pid_alive=pid_alive(pid) if (this_machine and pid) else None)


def _unprotected_warning(state: State, holder: Holder, record: codec.LockRecord) -> str | None:
    # Deep Lake 3.9.52 never refreshes its lock (its refresher's TypeError is swallowed),
    # so a writer that runs longer than 300 s is unprotected while still alive.
    if state is State.STALE and record.format == "deeplake-3.9" and holder.pid_alive:
        return (
            f"Deep Lake pid {holder.pid} on this machine is still running but its lock expired: "
            "Deep Lake 3.9 never refreshes its lock, so that writer is unprotected. `dlock guard` keeps its lock valid while it runs."
        )
    if state is State.HELD and holder.this_machine and holder.pid_alive is False:
        return (
            f"the process that took it (pid {holder.pid} on this machine) has exited; "
            "unless its token is used to refresh it, the lock goes stale when it expires."
        )
    return None
