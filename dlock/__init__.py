"""dlock: administer dataset write locks (Deep Lake 3 lock files, ZooKeeper lock nodes).

    import dlock
    dlock.status("s3://bucket/ds")
    with dlock.lock("./ds", timeout=60) as lease:
        ...
"""

from __future__ import annotations

from dlock._version import __version__
from dlock.api import acquire, check, lock, refresh, release, status, wait
from dlock.errors import (
    BackendError,
    CorruptLock,
    DLockError,
    Interrupted,
    LockBusy,
    LockLost,
    NotFound,
    NotOwner,
    Refused,
    UsageError,
)
from dlock.lease import Lease
from dlock.writer import Writer, writer
from dlock.model import Holder, LockInfo, LockStatus, State

__all__ = [
    "__version__",
    "acquire", "check", "lock", "refresh", "release", "status", "wait",
    "writer", "Writer", "Lease", "Holder", "LockInfo", "LockStatus", "State",
    "DLockError", "LockBusy", "LockLost", "NotOwner", "Refused", "CorruptLock",
    "BackendError", "NotFound", "UsageError", "Interrupted",
]
