"""Holding a ZooKeeper lock: ours while our ephemeral node exists and our session lives.

A kazoo lock holder is not told when its node is deleted (a forced release) or its
session expires: `is_acquired` stays True. So the lease watches its own node and listens
to the session itself, and `confirm()` answers from what they told it, without a request.
"""

from __future__ import annotations

import threading
import time
import warnings
from typing import TYPE_CHECKING, Callable

from kazoo.protocol.states import EventType, KazooState

from dlock.backends.base import LeaseHandle
from dlock.backends.zookeeper.client import ZkClient
from dlock.errors import DLockError, LockLost

if TYPE_CHECKING:
    from kazoo.protocol.states import WatchedEvent

FORCED = "the lock node was deleted (released by force)."


class ZkLease(LeaseHandle):
    """Our contender node `path`, holding the lock; `ttl` only paces dlock's checks, the
    session keeps the node."""

    def __init__(self, client: ZkClient, path: str, token: str, ttl: float) -> None:
        self.client = client
        self.path = path
        self.token = token
        self.ttl = ttl
        self.expires_at = time.time() + ttl
        self._callbacks: list[Callable[[str], None]] = []
        self._lost = False
        self._deadline: threading.Timer | None = None
        client.add_listener(self._on_state)
        stat = client.exists(path, watch=self._on_node_event)
        # The node's creation zxid: ZooKeeper's zxids only grow, and the recipe gives the
        # lock to contenders in the order their nodes were created, so each holder's is
        # larger than every earlier holder's.
        self._fence: int | None = int(stat.czxid) if stat is not None else None
        self._lost = stat is None

    # -- what the session and the node watch tell us ----------------------------------

    def _on_state(self, state: str) -> None:
        if state == KazooState.SUSPENDED:
            warnings.warn(
                f"{self.client.target}: connection to ZooKeeper suspended; the lock is kept while the session "
                "lives and dlock is reconnecting.", stacklevel=1)
            self._start_deadline()
        elif state == KazooState.CONNECTED:
            self._cancel_deadline()
        elif state == KazooState.LOST:
            self._cancel_deadline()
            self._lose("the ZooKeeper session expired, so its lock node is gone.")

    def _start_deadline(self) -> None:
        """The server expires a session it has not heard from for the session timeout, and
        may then give the lock to the next in line: past that, ours is gone even if no
        server is reachable to say so (kazoo would stay SUSPENDED forever)."""
        self._cancel_deadline()
        self._deadline = threading.Timer(
            self.client.session_timeout, self._lose,
            ("no contact with ZooKeeper for longer than the session timeout; "
             "the session has expired and its lock node with it.",))
        self._deadline.daemon = True
        self._deadline.start()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_node_event(self, event: WatchedEvent) -> None:
        if event.type == EventType.DELETED:
            self._lose(FORCED)
        elif not self._lost:
            # A watch fires once: watch again, off kazoo's event thread (requests from it block).
            threading.Thread(target=self._rewatch, daemon=True).start()

    def _rewatch(self) -> None:
        try:
            if self.client.exists(self.path, watch=self._on_node_event) is None:
                self._lose(FORCED)
        except DLockError:
            pass  # the session listener reports a session that cannot answer

    def _lose(self, reason: str) -> None:
        if self._lost:
            return
        self._lost = True
        for callback in list(self._callbacks):
            callback(f"{self.client.target}: {reason}")

    # -- LeaseHandle --------------------------------------------------------------

    def on_lost(self, callback: Callable[[str], None]) -> None:
        self._callbacks.append(callback)

    def fence(self) -> int:
        if self._lost or self._fence is None:
            raise LockLost(f"{self.client.target}: the lock node is gone.")
        return self._fence

    def confirm(self) -> None:
        if self._lost:
            raise LockLost(f"{self.client.target}: the lock node is gone.")

    def refresh(self) -> float:
        if self._lost or self.client.exists(self.path) is None:
            raise LockLost(f"{self.client.target}: the lock node is gone.")
        self.expires_at = time.time() + self.ttl
        return self.expires_at

    def release(self) -> None:
        self._lost = True  # our own delete is not a loss
        self._cancel_deadline()
        try:
            self.client.remove_listener(self._on_state)
            if not self.client.delete(self.path):
                raise LockLost(f"{self.client.target}: the lock node was already gone; nothing released.")
        finally:
            self.client.close()
