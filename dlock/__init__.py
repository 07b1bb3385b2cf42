"""dlock: administer dataset write locks (Deep Lake 3 lock files, ZooKeeper lock nodes).

    import dlock
    dlock.status("s3://bucket/ds")
    with dlock.lock("./ds", timeout=60) as lease:
        ...
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any, Callable

from dlock._version import __version__

if TYPE_CHECKING:
    from dlock.api import acquire, check, lock, refresh, release, status, wait
    from dlock.errors import BackendError, CorruptLock, DLockError, Interrupted, LockBusy, LockLost
    from dlock.errors import NotFound, NotOwner, Refused, UsageError
    from dlock.lease import Lease
    from dlock.model import Holder, LockInfo, LockStatus, State
    from dlock.writer import Writer, writer

# The public API is imported on first use: the `dlock` command imports this package on
# every start, and most verbs need only a part of it (`dlock --version` none).
_HOMES = {
    **dict.fromkeys(("acquire", "check", "lock", "refresh", "release", "status", "wait"), "dlock.api"),
    **dict.fromkeys(("BackendError", "CorruptLock", "DLockError", "Interrupted", "LockBusy", "LockLost",
                     "NotFound", "NotOwner", "Refused", "UsageError"), "dlock.errors"),
    "Lease": "dlock.lease",
    **dict.fromkeys(("Holder", "LockInfo", "LockStatus", "State"), "dlock.model"),
    "Writer": "dlock.writer",
}

__all__ = [
    "__version__",
    "acquire", "check", "lock", "refresh", "release", "status", "wait",
    "writer", "Writer", "Lease", "Holder", "LockInfo", "LockStatus", "State",
    "DLockError", "LockBusy", "LockLost", "NotOwner", "Refused", "CorruptLock",
    "BackendError", "NotFound", "UsageError", "Interrupted",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'dlock' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """`dlock.writer` is the function, as when it was imported eagerly: importing the
    submodule dlock.writer would otherwise rebind the name to the module."""

    @property
    def writer(self) -> Callable[..., Any]:
        from dlock.writer import writer

        return writer

    @writer.setter
    def writer(self, value: object) -> None:
        pass  # the import system binding the submodule dlock.writer


sys.modules[__name__].__class__ = _Package
