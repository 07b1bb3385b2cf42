"""Lock files beside a dataset, on any Store: acquire, take over, refresh, release.

Every step is one of the store's conditional operations (create if absent, replace or
delete if unchanged), and every result is checked against our owner token before it
counts: Deep Lake 3 writes its lock in place and unconditionally, so what a won create
reads back can already be a Deep Lake process's.
"""

from __future__ import annotations

import time

from dlock import codec
from dlock.backends.base import Backend, LeaseHandle, Options, ProgressCallback
from dlock.backends.fence import counter_path, raise_fence
from dlock.backends.judge import judge_lock, owner_of, same_holder
from dlock.backends.layout import LOCK_NAME, DatasetLayout, LockFile
from dlock.stores.base import AlreadyExists, Conflict, Store, Stored
from dlock.stores.notify import Watcher
from dlock.errors import CorruptLock, DLockError, LockBusy, LockLost, NotOwner, Remedy, UsageError
from dlock.identity import fence_of, holder_payload, number, random_bytes
from dlock.model import FleetLock, FleetReport, Kind, LockInfo, LockStatus, Removal, State, held_by


class LockFileBackend(Backend):
    def __init__(self, store: Store, dataset: str, target: str, options: Options) -> None:
        self.store = store
        self.dataset = dataset
        self.target = target
        self.options = options
        self.atomic = store.atomic
        self.layout = DatasetLayout(store, dataset, target, options)
        self._found: dict[str, Stored] = {}  # what scan() judged, for removals conditional on it
        self._watcher: Watcher | None = None  # set at a waiter's first wait, kept

    @property
    def _counter(self) -> str:
        """One fencing counter per dataset, at its root, for the locks of every head: a commit
        moves the head's lock to a new file, and fences must keep growing across it."""
        return counter_path(self.store.join(self.dataset, LOCK_NAME))

    def ensure_exists(self) -> None:
        """NotFound unless the dataset exists (one or two requests, no listing of versions)."""
        self.layout.locate()

    # -- reading ------------------------------------------------------------------

    def status(self) -> LockStatus:
        layout = self.layout.layout()
        infos = [self._judge(lock, stored) for lock, stored in zip(layout.all_locks, self._read_all(layout.all_locks))]
        shown = tuple(
            info for info in infos if info.state is not State.ABSENT or info.path == layout.target_lock.path
        )
        return LockStatus(self.target, layout.kind, layout.target_lock.path, shown, atomic=self.atomic)

    def _read_all(self, locks: tuple[LockFile, ...]) -> list[Stored | None]:
        """A dataset with many commits has a lock file per version: read them concurrently
        where requests go over a network."""
        if not self.store.parallel_io or len(locks) < 3:
            return [self.store.read(lock.path) for lock in locks]
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(locks))) as pool:
            return list(pool.map(lambda lock: self.store.read(lock.path), locks))

    def _judge(self, lock: LockFile, stored: Stored | None) -> LockInfo:
        return judge_lock(lock, stored, self.options.validity)

    def scan(self, *, depth: int, on_progress: ProgressCallback | None = None,
             concurrency: int | None = None) -> FleetReport:
        from dlock.backends import tree  # list/clean only: off the path of every other verb

        report, self._found = tree.scan(self.store, self.dataset, self.target, depth=depth,
                                        validity=self.options.validity, concurrency=concurrency,
                                        on_progress=on_progress)
        return report

    def remove_found(self, entries: list[FleetLock], *, dry_run: bool = False,
                     concurrency: int | None = None) -> list[Removal]:
        from dlock.backends import tree

        return tree.remove(self.store, self._found, entries, dry_run=dry_run, concurrency=concurrency)

    # -- waiting --------------------------------------------------------------------

    def wait_for_change(self, delay: float) -> None:
        """Woken by the store where it tells of releases (inotify, other threads), else a sleep."""
        if not self.store.notifies:
            time.sleep(delay)
            return
        if self._watcher is None:
            # Counts releases from now on, and looks whether the lock is there before it
            # sleeps: a release since our try is not missed.
            self._watcher = self.store.watch(self.layout.locate()[1].path)
        self._watcher.wait(delay)

    def _done_waiting(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    def close(self) -> None:
        self._done_waiting()

    # -- acquiring ------------------------------------------------------------------

    def try_acquire(self, *, ttl: float, note: str, shared: bool = False) -> LeaseHandle:
        if shared:
            raise UsageError(f"{self.target}: lock files have no shared mode; shared locks are for ZooKeeper targets.")
        kind, lock, _ = self.layout.locate()
        if lock.version and lock.path != self.store.join(self.dataset, LOCK_NAME):
            self.store.prepare_parent(lock.path)  # a head checked against version_control_info.json
        token = random_bytes(16).hex()
        data = _lock_bytes(token, ttl, note)
        try:
            stored = self.store.create(lock.path, data)
        except AlreadyExists:
            stored = self._take_over_stale(lock, data, token)
        try:
            self._insist_ours(lock, stored, token)
            if kind is Kind.DEEPLAKE and self.store.deeplake_settle > 0:
                stored = self._outlast_deeplake_verify(lock, token)
            self._done_waiting()  # the next waiter in line watches the lock now
            return FileLease(self.store, self.target, lock.path, token, ttl, note, stored, self._counter)
        except LockBusy:
            raise  # not ours: removes nothing
        except BaseException:
            self._give_back(lock.path, stored)  # taken, but never handed to the caller
            raise

    def _take_over_stale(self, lock: LockFile, data: bytes, token: str) -> Stored:
        current = self.store.read(lock.path)
        if current is None:  # released between our create and our read: try once more
            try:
                return self.store.create(lock.path, data)
            except AlreadyExists:
                current = self.store.read(lock.path)
        if current is None:
            raise LockBusy(f"{self.target} is being locked and unlocked by others; try again.")
        info = self._judge(lock, current)
        if info.state is State.CORRUPT:
            raise CorruptLock(f"{lock.path} is corrupt ({info.reason}). Inspect it.", remedy=Remedy.FORCE_RELEASE)
        if info.state is State.HELD:
            if owner_of(current) == token:  # our own write, answered as a conflict after a retry
                return current
            raise LockBusy(f"{self.target} is locked{held_by(info)}.", holder=info)
        try:
            return self.store.replace(lock.path, data, current)
        except Conflict:
            again = self.store.read(lock.path)
            if owner_of(again) == token:
                assert again is not None
                return again
            raise LockBusy(f"{self.target} was taken over by another process first.") from None

    def _insist_ours(self, lock: LockFile, stored: Stored | None, token: str) -> None:
        """A lease never holds bytes that are not its own."""
        if owner_of(stored) != token:
            info = self._judge(lock, stored)
            raise LockBusy(f"{self.target} was locked{held_by(info)} at the same moment; it holds the lock.", holder=info)

    def _outlast_deeplake_verify(self, lock: LockFile, token: str) -> Stored:
        """Deep Lake takes its lock by write, sleep, read back: a Deep Lake process that read
        the lock as free just before our create writes over it and, after its verify sleep,
        believes it holds. Confirming after that sleep (plus a margin) finds its bytes there,
        and then it holds and we do not; we remove nothing."""
        time.sleep(self.store.deeplake_settle)
        current = self.store.read(lock.path)
        self._insist_ours(lock, current, token)
        assert current is not None
        return current

    def _give_back(self, path: str, stored: Stored) -> None:
        try:
            self.store.delete(path, stored)
        except (Conflict, DLockError):
            pass  # changed since (not ours to delete), or the store failed: it expires by itself

    def adopt(self, token: str, *, ttl: float) -> LeaseHandle:
        lock = self.layout.locate()[1]
        current = self.store.read(lock.path)
        if current is None:
            raise NotOwner(f"{self.target} is not locked; the lock was released or removed. Acquire it again.")
        if owner_of(current) != token:
            raise NotOwner(f"{self.target}: the token does not own this lock (it was taken over or forced away).")
        return FileLease(self.store, self.target, lock.path, token, ttl, None, current, self._counter)

    def owned_by(self, token: str) -> LockInfo:
        lock = self.layout.locate()[1]
        current = self.store.read(lock.path)
        info = self._judge(lock, current)
        if current is None or owner_of(current) != token:
            raise NotOwner(f"{self.target}: the token does not own the lock (it was released, taken over or forced away).")
        if info.state is not State.HELD:
            raise NotOwner(f"{self.target}: the token's lock expired; another process may take it over now.")
        return info

    # -- removing without a token ------------------------------------------------------

    def remove(
        self, *, force: bool, if_stale: bool, seen: LockInfo | None, include_waiters: bool = False
    ) -> list[LockInfo]:
        lock = self.layout.locate()[1]
        current = self.store.read(lock.path)
        info = self._judge(lock, current)
        if current is None:
            return []
        if seen is not None and not same_holder(seen, info):
            raise LockBusy(f"{lock.path} changed hands since it was shown; look again before removing it.", holder=info)
        if info.state is State.CORRUPT and not force:
            raise CorruptLock(f"{lock.path} is corrupt ({info.reason}); only a forced release removes it.",
                              remedy=Remedy.FORCE_RELEASE)
        if info.state is State.HELD and not force:
            raise LockBusy(f"{self.target} is locked{held_by(info)}; it is not stale.", holder=info)
        try:
            self.store.delete(lock.path, current)
        except Conflict:
            raise LockBusy(f"{lock.path} changed while dlock removed it; look again.") from None
        return [info]

    def force_preview(self, include_waiters: bool = False) -> list[LockInfo]:
        primary = self.status().primary
        return [primary] if primary is not None and primary.state is not State.ABSENT else []


class FileLease(LeaseHandle):
    """Our lock file: every operation conditional on the version we last wrote or saw."""

    def __init__(self, store: Store, target: str, path: str, token: str, ttl: float, note: str | None,
                 stored: Stored, counter: str) -> None:
        self.store = store
        self.counter = counter
        self.target = target
        self.path = path
        self.token = token
        self.ttl = ttl
        self.stored = stored
        record = codec.decode(stored.data)
        payload = record.payload or {}
        self.node_id = record.node_id  # kept across refreshes: the holder's identity
        self.note = note if note is not None else str(payload.get("note") or "")
        self.created = number(payload.get("created")) or time.time()
        self.expires_at = record.time
        self._fence = fence_of(payload.get("fence"))  # set once raised, kept by every refresh

    def fence(self) -> int:
        """Raise the counter beside the lock, then write the number into our lock,
        conditionally: a lock lost in between gives no number (see dlock.backends.fence)."""
        if self._fence is None:
            value = raise_fence(self.store, self.counter, self.target)
            self.refresh(fence=value)
        assert self._fence is not None
        return self._fence

    def refresh(self, fence: int | None = None) -> float:
        fence = self._fence if fence is None else fence
        data = _lock_bytes(self.token, self.ttl, self.note, created=self.created, node_id=self.node_id, fence=fence)
        try:
            stored = self.store.replace(self.path, data, self.stored)
        except Conflict:
            current = self._ours_or_lost("the lock was removed or taken over by someone else.")
            # Ours, but the store's version moved (a retried write): refresh on what is there.
            try:
                stored = self.store.replace(self.path, data, current)
            except Conflict:
                raise LockLost(f"{self.target}: the lock changed under us and is no longer ours.") from None
        if owner_of(stored) != self.token:  # overwritten right after our replace (Deep Lake writes in place)
            raise LockLost(f"{self.target}: the lock was overwritten by another writer and is no longer ours.")
        self.stored = stored
        self.expires_at = codec.decode(stored.data).time
        self._fence = fence
        return self.expires_at

    def confirm(self) -> None:
        """One read: LockLost unless the lock file still carries our token."""
        current = self.store.read(self.path)
        if current is None:
            raise LockLost(f"{self.target}: the lock was removed (released by force?) and is no longer ours.")
        if owner_of(current) != self.token:
            info = judge_lock(LockFile(self.path), current, None)
            raise LockLost(f"{self.target}: the lock was taken over{held_by(info)} and is no longer ours.")

    def release(self) -> None:
        try:
            self.store.delete(self.path, self.stored)
            return
        except Conflict:
            current = self._ours_or_lost("the lock was already removed or taken over; nothing released.")
        try:
            self.store.delete(self.path, current)
        except Conflict:
            raise LockLost(f"{self.target}: the lock changed under us; nothing released.") from None

    def _ours_or_lost(self, reason: str) -> Stored:
        current = self.store.read(self.path)
        if current is None or owner_of(current) != self.token:
            raise LockLost(f"{self.target}: {reason}") from None
        return current


def _lock_bytes(token: str, ttl: float, note: str | None, created: float | None = None,
                node_id: int | None = None, fence: int | None = None) -> bytes:
    now = time.time()
    node = codec.random_node_id() if node_id is None else node_id
    payload = holder_payload(token, ttl, note, created, now, fence)
    return codec.encode(codec.LockRecord(node, now + ttl, payload=payload))
