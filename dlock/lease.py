"""A held lock: refresh on a schedule, notice loss, release once. One piece for every backend."""

from __future__ import annotations

import threading
import time
from typing import Callable

from dlock.backends.base import Backend, LeaseHandle
from dlock.errors import LockLost


class Lease:
    """A lock you hold. `token` proves it; `refresh()` extends it; `release()` gives it up.

    `lost` turns True once dlock learns the lock is no longer yours (forced away,
    taken over after expiry, or a ZooKeeper session that died); from then on
    `refresh()` raises LockLost.
    """

    def __init__(self, backend: Backend, handle: LeaseHandle) -> None:
        self.backend = backend
        self._handle = handle
        self._lost_reason: str | None = None
        self._released = False
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
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
    def lost(self) -> bool:
        return self._lost_reason is not None

    @property
    def lost_reason(self) -> str | None:
        return self._lost_reason

    def refresh(self) -> float:
        """Extend the lock by its ttl; returns the new expiry. Raises LockLost if it is gone."""
        with self._mutex:
            if self._lost_reason is not None:
                raise LockLost(self._lost_reason)
            try:
                return self._handle.refresh()
            except LockLost as exc:
                self._mark_lost(str(exc))
                raise

    def release(self) -> None:
        """Stop refreshing and remove the lock. Raises LockLost if it was no longer ours."""
        self._stop.set()
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join()
        with self._mutex:
            if self._released:
                return
            self._released = True
            if self._lost_reason is not None:
                raise LockLost(self._lost_reason)
            self._handle.release()

    def keep_alive(self, on_lost: Callable[[str], None] | None = None) -> None:
        """Refresh in a background thread at ttl x 0.4 until release(); call on_lost(reason) on loss."""
        if on_lost is not None:
            self._on_lost.append(on_lost)
            if self._lost_reason is not None:
                on_lost(self._lost_reason)
        if self._keeper is None:
            self._keeper = threading.Thread(target=self._keep, name=f"dlock-refresh {self.target}", daemon=True)
            self._keeper.start()

    def _keep(self) -> None:
        interval = self._handle.refresh_interval
        delay = interval
        while not self._stop.wait(delay) and not self.lost:
            try:
                self.refresh()
                delay = interval
            except LockLost:
                return
            except Exception as exc:  # noqa: BLE001  (the thread must outlive any store error)
                # A store that blips: retry sooner, but a lock past its expiry is not ours.
                if time.time() >= self.expires:
                    self._mark_lost(f"{self.target}: could not refresh before the lock expired ({exc})")
                    return
                delay = max(0.05, min(interval / 4, self.expires - time.time()) / 2)

    def _mark_lost(self, reason: str) -> None:
        if self._lost_reason is not None or self._released:
            return
        self._lost_reason = reason
        self._stop.set()
        for callback in list(self._on_lost):
            callback(reason)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "lost" if self.lost else ("released" if self._released else "held")
        return f"<Lease {self.target} {state} expires={self.expires:.0f}>"
