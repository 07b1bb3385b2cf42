"""A held lock: refresh on a schedule, notice loss within seconds, release once. One piece for
every backend."""

from __future__ import annotations

import threading
import time
from typing import Callable

from dlock import keeper
from dlock.backends.base import Backend, LeaseHandle
from dlock.errors import DLockError, LockLost

# Between refreshes (every ttl x 0.4, two minutes by default) a kept lease checks that the
# lock is still its own this often: one read of a lock file, nothing on ZooKeeper (its
# watch tells). So a forced release or a takeover is noticed within about this long.
CHECK_INTERVAL = 1.0


class Lease:
    """A lock you hold. `token` proves it; `refresh()` extends it; `release()` gives it up.

    `lost` turns True once dlock learns the lock is no longer yours (forced away,
    taken over, or a ZooKeeper session that died): at once on ZooKeeper, within
    `check_interval` while `keep_alive()` runs, and at any `confirm()`. From then on
    `refresh()`, `confirm()` and `release()` raise LockLost, and so does leaving a
    `with` block (unless the block itself raised).
    """

    def __init__(self, backend: Backend, handle: LeaseHandle) -> None:
        self.backend = backend
        self._handle = handle
        self._lost_reason: str | None = None
        self._released = False
        self._stop = threading.Event()
        self._kept = False
        self._check = self._refresh_every = self._next_refresh = 0.0
        self._on_lost: list[Callable[[str], None]] = []
        self._mutex = threading.Lock()
        handle.on_lost(self._mark_lost)

    @property
    def target(self) -> str:
        return self.backend.target

    @property
    def path(self) -> str:
        return self._handle.path

    @property
    def token(self) -> str:
        return self._handle.token

    @property
    def ttl(self) -> float:
        return self._handle.ttl

    @property
    def expires(self) -> float:
        """Epoch seconds at which the lock expires unless refreshed."""
        return self._handle.expires_at

    @property
    def fence(self) -> int:
        """This acquisition's fencing number: larger than that of every earlier acquisition of
        the same lock, across releases and takeovers. Hand it to what the lock protects, so it
        can refuse a holder that was paused past its ttl (whose fence is smaller).

        ZooKeeper and Redis number every acquisition at no cost; a lock file raises its
        counter (`<lock>.fence`) on the first read, two or three requests, and raises
        LockLost if the lock stopped being ours before that."""
        with self._mutex:
            self._raise_if_gone()
            try:
                return self._handle.fence()
            except LockLost as exc:
                self._mark_lost(str(exc))
                raise

    @property
    def lost(self) -> bool:
        return self._lost_reason is not None

    @property
    def lost_reason(self) -> str | None:
        return self._lost_reason

    def refresh(self) -> float:
        """Extend the lock by its ttl; returns the new expiry. Raises LockLost if it is gone."""
        with self._mutex:
            self._raise_if_gone(expiry_counts=False)  # the store's compare-and-swap decides
            try:
                return self._handle.refresh()
            except LockLost as exc:
                self._mark_lost(str(exc))
                raise

    def confirm(self) -> None:
        """Raise LockLost unless the lock is still ours, asking the store (one read of a lock
        file; ZooKeeper's watch already knows). dlock.writer calls it before every write."""
        with self._mutex:
            self._raise_if_gone()
            try:
                self._handle.confirm()
            except LockLost as exc:
                self._mark_lost(str(exc))
                raise

    def raise_if_lost(self) -> None:
        """LockLost if dlock already knows the lock is not ours, or it expired without a
        refresh; asks the store nothing (confirm() does)."""
        self._raise_if_gone()

    def _raise_if_gone(self, expiry_counts: bool = True) -> None:
        if self._released:
            raise LockLost(f"{self.target}: the lock was released.")
        if expiry_counts and self._lost_reason is None and time.time() >= self.expires:
            # Not refreshed in time: another process may take it over now, noticed or not.
            self._mark_lost(f"{self.target}: the lock expired before it could be refreshed.")
        if self._lost_reason is not None:
            raise LockLost(self._lost_reason)

    def release(self) -> None:
        """Stop refreshing and remove the lock. Raises LockLost if it was no longer ours."""
        self._stop.set()  # a check or refresh under way finishes first: both hold the mutex
        with self._mutex:
            if self._released:
                return
            self._released = True
            if self._lost_reason is not None:
                raise LockLost(self._lost_reason)
            self._handle.release()

    def keep_alive(self, on_lost: Callable[[str], None] | None = None, check_interval: float = CHECK_INTERVAL) -> None:
        """Until release(), refresh at ttl x 0.4 and confirm ownership every `check_interval`
        seconds between (in the process's keeper, dlock.keeper); call on_lost(reason) once on loss."""
        if on_lost is not None:
            self._on_lost.append(on_lost)
            if self._lost_reason is not None:
                on_lost(self._lost_reason)
        if not self._kept:
            self._kept = True
            self._refresh_every = self._handle.refresh_interval
            self._check = min(check_interval, self._refresh_every) if check_interval > 0 else self._refresh_every
            self._next_refresh = time.monotonic() + self._refresh_every
            keeper.KEEPER.schedule(self._next_due(), self._tick, self._stop)

    def _next_due(self) -> float:
        return time.monotonic() + max(0.0, min(self._check, self._next_refresh - time.monotonic()))

    def _tick(self) -> float | None:
        """One refresh or check; when the next is due, or None once the lease is over."""
        if self._stop.is_set() or self.lost:
            return None
        refreshing = time.monotonic() >= self._next_refresh
        try:
            if refreshing:
                self.refresh()
                self._next_refresh = time.monotonic() + self._refresh_every
            else:
                self.confirm()
        except LockLost:
            return None
        except Exception as exc:  # noqa: BLE001  (keeping must outlive any store error)
            # A store that blips: retry sooner, but a lock past its expiry is not ours.
            if time.time() >= self.expires:
                self._mark_lost(f"{self.target}: could not refresh before the lock expired ({_short(exc)})")
                return None
            if refreshing:
                retry = max(0.05, min(self._refresh_every / 4, self.expires - time.time()) / 2)
                self._next_refresh = time.monotonic() + retry
        return self._next_due()

    def _mark_lost(self, reason: str) -> None:
        if self._lost_reason is not None or self._released:
            return
        self._lost_reason = reason
        self._stop.set()
        for callback in list(self._on_lost):
            callback(reason)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            self.release()
        except LockLost:
            if exc_type is None:  # a lost lock surfaces, unless the block already failed
                raise

    def __repr__(self) -> str:
        state = "lost" if self.lost else ("released" if self._released else "held")
        return f"<Lease {self.target} {state} expires={self.expires:.0f}>"


def _short(exc: Exception) -> str:
    return str(exc) if isinstance(exc, DLockError) else f"{type(exc).__name__}: {exc}"
