"""A zk:// target: one lock node in kazoo's recipe layout, seen and taken through one session."""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING

from dlock.backends.base import Backend, LeaseHandle, Options, ProgressCallback, shown
from dlock.backends.zookeeper.client import ZkClient, parse_target
from dlock.backends.zookeeper.holders import describe, describe_all, node_data
from dlock.backends.zookeeper.lease import ZkLease
from dlock.backends.zookeeper.recipe import READ, WRITE, Contender, blockers, contenders, predecessor
from dlock.errors import LockBusy, NotFound, NotOwner, Remedy, UsageError
from dlock.model import FleetLock, FleetReport, Kind, LockInfo, LockStatus, State, held_by

if TYPE_CHECKING:
    from kazoo.protocol.states import WatchedEvent


class ZooKeeperBackend(Backend):
    def __init__(self, target: str, options: Options) -> None:
        self.target = shown(target)
        spec = parse_target(target, options)
        self.path = spec.path
        self.client = ZkClient(self.target, spec, max(options.zk_timeout, 0.5))
        self._changed = threading.Event()  # set by our watches: the line may have moved
        self._place: str | None = None  # our contender node while we wait in line
        self._token = ""

    # -- reading ----------------------------------------------------------------------

    def status(self) -> LockStatus:
        # The look leaves a watch on the line, so `wait` sleeps until it changes.
        ordered = self._ordered(watch=True)
        infos = describe_all(self.client, self.path, ordered)
        if not infos:
            infos = [LockInfo(path=self.path, state=State.ABSENT, format="zookeeper")]
        return LockStatus(self.target, Kind.ZOOKEEPER, self.path, tuple(infos))

    def _ordered(self, watch: bool = False) -> list[Contender]:
        children = self.client.children(self.path, watch=self._on_change if watch else None)
        if children is None:  # no lock node: nobody holds or waits (and nobody waits for it)
            return []
        ordered = contenders(children)
        if children and not ordered:
            raise UsageError(
                f"{self.target}: not a lock node (its children are not kazoo lock contenders such as "
                f"'<uuid>__lock__0000000001'). Check the path."
            )
        return ordered

    def _on_change(self, event: WatchedEvent) -> None:
        self._changed.set()

    def wait_for_change(self, delay: float) -> None:
        """A watch wakes us at once when what we wait for moves (no polling); `delay` bounds
        the sleep all the same."""
        self._changed.wait(delay)
        self._changed.clear()

    # -- acquiring ----------------------------------------------------------------------

    def try_acquire(self, *, ttl: float, note: str, shared: bool = False) -> LeaseHandle:
        if self._place is None:
            self._enter_line(READ if shared else WRITE, ttl, note)
        ordered = self._ordered()
        mine = next((c for c in ordered if c.name == self._place), None)
        if mine is None:
            self._place = None
            raise LockBusy(f"{self.target}: our place in line vanished (session trouble); trying again.")
        nearest = predecessor(mine, ordered)
        if nearest is None:
            node, self._place = self._place, None
            return ZkLease(self.client, f"{self.path}/{node}", self._token, ttl)
        self._watch_predecessor(nearest)
        first = blockers(mine, ordered)[0]  # named in the message: the earliest in our way
        info = describe(self.client, self.path, first, ordered)
        raise LockBusy(f"{self.target} is locked{held_by(info)}.", holder=info)

    def _enter_line(self, kind: str, ttl: float, note: str) -> None:
        """Create our ephemeral sequential node once, and keep our place while we wait."""
        self._token = uuid.uuid4().hex
        created = self.client.create_sequential(f"{self.path}/{self._token}{kind}", node_data(self._token, ttl, note))
        self._place = created.rsplit("/", 1)[1]

    def _watch_predecessor(self, predecessor: Contender) -> None:
        """Only the nearest blocker's going can let us in: watch it, not the whole line."""
        if self.client.exists(f"{self.path}/{predecessor.name}", watch=self._on_change) is None:
            self._changed.set()  # gone since we listed the line: look again at once

    def adopt(self, token: str, *, ttl: float) -> LeaseHandle:
        raise UsageError(
            f"{self.target}: a ZooKeeper lock lives with the session that holds it; it cannot be refreshed "
            "or released by token from another process. Stop the holder, or release it by force.",
            remedy=Remedy.FORCE_RELEASE,
        )

    def owned_by(self, token: str) -> LockInfo:
        for lock in self.status().locks:
            if token and lock.path.rsplit("/", 1)[-1].startswith(token + "__"):
                if lock.waiting:
                    raise NotOwner(f"{self.target}: the token's contender is still waiting in line; it does not hold the lock.")
                return lock
        raise NotOwner(f"{self.target}: no contender with that token holds the lock (released, forced away, "
                       "or its session ended).")

    # -- removing -----------------------------------------------------------------------

    def remove(
        self, *, force: bool, if_stale: bool, seen: LockInfo | None, include_waiters: bool = False
    ) -> list[LockInfo]:
        present = [lock for lock in self.status().locks if lock.state is State.HELD]
        if not force:  # ephemeral nodes are never stale: they vanish with their session
            if present:
                raise LockBusy(f"{self.target} is held; ZooKeeper locks are never stale (they end with their session).")
            return []
        chosen = [lock for lock in present if include_waiters or not lock.waiting]
        # Each delete is conditional on the node's version as shown: a node that is gone,
        # or not the one we looked at, is skipped.
        return [lock for lock in chosen if self.client.delete(lock.path, version=_version(lock))]

    def force_preview(self, include_waiters: bool = False) -> list[LockInfo]:
        return [lock for lock in self.status().locks
                if lock.state is not State.ABSENT and (include_waiters or not lock.waiting)]

    # -- listing ------------------------------------------------------------------------

    def scan(self, *, depth: int, on_progress: ProgressCallback | None = None) -> FleetReport:
        """Every lock node under this path (`dlock list zk://...`): nodes whose children are
        contenders, with one row per contender. Nothing here is ever stale: a dead holder's
        ephemeral node goes with its session, so `clean` finds nothing to remove."""
        if self.client.exists(self.path) is None:
            raise NotFound(f"{self.target}: no such node. Check the path.")
        report = FleetReport(self.target, Kind.ZOOKEEPER, 0, [], [])
        pending, scanned = [(self.path, 0)], 0
        while pending:
            node, level = pending.pop()
            children = self.client.children(node)
            if children is None:
                continue
            scanned += 1
            ordered = contenders(children)
            if ordered:
                report.datasets += 1
                report.locks += [FleetLock(node, info) for info in describe_all(self.client, node, ordered)]
            elif level < depth:
                pending += [(f"{node.rstrip('/')}/{child}", level + 1) for child in children]
            if on_progress is not None:
                on_progress(scanned, len(report.locks))
        report.locks.sort(key=lambda entry: (entry.dataset, entry.lock.path))
        return report

    def close(self) -> None:
        self.client.close()


def _version(lock: LockInfo) -> int:
    """The node version in a fingerprint `<czxid hex>.<version>`."""
    return int((lock.fingerprint or "0.0").rsplit(".", 1)[1])


def open_backend(target: str, location: str, options: Options) -> Backend:
    return ZooKeeperBackend(location, options)
