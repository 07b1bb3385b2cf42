"""The one interface every backend implements: lock files on a store, or ZooKeeper nodes."""

from __future__ import annotations

import abc
import dataclasses
import time
from typing import Callable, Protocol
from urllib.parse import urlsplit

from dlock.errors import UsageError
from dlock.model import FleetLock, FleetReport, LockInfo, LockStatus, Removal


class ProgressCallback(Protocol):
    """How a scan (`list`, `clean`) advances. Without `total`: `done` directories (or keys)
    looked at so far and `found` locks. With `total`: `done` of a known number of steps, named
    by `unit`: first the folders directly under the root (one is done when everything below it
    is listed), then the lock files read (`found` is then how many there are)."""

    def __call__(self, done: int, found: int, total: int | None = None, unit: str = "directories") -> None: ...


@dataclasses.dataclass(frozen=True)
class Options:
    """What a target needs besides its URL; the CLI's global options, the API's keywords."""

    storage_options: dict[str, str] = dataclasses.field(default_factory=dict)
    branch: str = "main"
    commit: str | None = None
    validity: float | None = None  # overrides the 300 s validity of a 14-byte legacy lock
    zk_timeout: float = 10.0
    zk_auth: str | None = None


def shown(target: str) -> str:
    """A lock service's target as shown to users: never with the password in its URL."""
    parts = urlsplit(target)
    if "@" not in parts.netloc:
        return target
    return target.replace(parts.netloc, parts.netloc.rsplit("@", 1)[1], 1)


class LeaseHandle(abc.ABC):
    """A backend's hold on one lock; dlock.Lease wraps it with refresh scheduling."""

    token: str
    ttl: float
    expires_at: float
    path: str

    @abc.abstractmethod
    def refresh(self) -> float:
        """Extend the lock; returns the new expiry. Raises LockLost when it is no longer ours."""

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lock up. Raises LockLost when it was no longer ours."""

    @abc.abstractmethod
    def confirm(self) -> None:
        """Raise LockLost unless the lock is still ours: one read of the lock file, or what a
        ZooKeeper node watch already knows (no request)."""

    @abc.abstractmethod
    def fence(self) -> int:
        """This acquisition's fencing number, larger than any earlier acquisition's of the same
        lock. A lock file raises its counter on the first call; LockLost if by then the lock is
        no longer ours."""

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """Call `callback(reason)` when the backend itself notices the loss (ZooKeeper does)."""

    @property
    def refresh_interval(self) -> float:
        """Deep Lake refreshes at 120 s of 300: ttl x 0.4."""
        return self.ttl * 0.4


class Backend(abc.ABC):
    """One target: a dataset's lock files, or one ZooKeeper lock node."""

    target: str
    atomic = True

    @abc.abstractmethod
    def status(self) -> LockStatus:
        """Every lock of the target, judged now."""

    @abc.abstractmethod
    def try_acquire(self, *, ttl: float, note: str, shared: bool = False) -> LeaseHandle:
        """One attempt. Raises LockBusy (held), CorruptLock, BackendError."""

    @abc.abstractmethod
    def adopt(self, token: str, *, ttl: float) -> LeaseHandle:
        """The lease of another process of ours, proven by its token (a refresh or release by token)."""

    @abc.abstractmethod
    def owned_by(self, token: str) -> LockInfo:
        """The lock as it stands, if `token` holds it now (valid, not waiting in line);
        NotOwner otherwise. What `dlock check` asks."""

    @abc.abstractmethod
    def remove(self, *, force: bool, if_stale: bool, seen: LockInfo | None, include_waiters: bool = False) -> list[LockInfo]:
        """Remove the target's lock without its token: only stale/corrupt ones unless `force`.

        `seen` is the lock as the user was shown it; removal is refused if it changed since.
        Returns what was removed.
        """

    @abc.abstractmethod
    def force_preview(self, include_waiters: bool = False) -> list[LockInfo]:
        """What a forced removal would take now, to show before asking."""

    def scan(self, *, depth: int, on_progress: ProgressCallback | None = None) -> FleetReport:
        """Every lock under this target as a root (`list`)."""
        raise UsageError(f"{self.target}: listing is not supported for this kind of target.")

    def remove_found(self, entries: list[FleetLock], *, dry_run: bool = False) -> list[Removal]:
        """Remove locks that scan() found, each only if it is still the object judged (`clean`)."""
        raise UsageError(f"{self.target}: cleaning is not supported for this kind of target.")

    def wait_for_change(self, delay: float) -> None:
        """Block until the lock may have changed, at most `delay` seconds (polling by default)."""
        time.sleep(delay)

    def close(self) -> None:
        """Free connections (ZooKeeper sessions)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
