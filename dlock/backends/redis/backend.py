"""A redis:// target: one lock key in redis-py's layout (or a prefixed library's), on one
server. Redis keys are not session-bound: a lock lives until released or its TTL ends."""

from __future__ import annotations

import time
import uuid

from dlock.backends.base import Backend, LeaseHandle, Options, ProgressCallback, shown
from dlock.backends.redis import keyspace
from dlock.backends.redis.client import RedisClient, parse_target
from dlock.backends.redis.keyspace import pattern_of
from dlock.backends.redis.wakeup import Waker
from dlock.backends.redis.holders import describe, holder_json
from dlock.backends.redis.lease import RedisLease
from dlock.backends.redis.recipe import ACQUIRE, DELETE, candidates, channel, fence_key, fingerprint, layout_of, meta_key
from dlock.errors import CorruptLock, LockBusy, NotOwner, Remedy, UsageError
from dlock.model import FleetLock, FleetReport, Kind, LockInfo, LockStatus, Removal, State, held_by


class RedisBackend(Backend):
    def __init__(self, target: str, options: Options) -> None:
        self.target = shown(target)
        spec = parse_target(target, options.storage_options)
        self._key = spec.key
        self.client = RedisClient(self.target, spec)
        self._waker: Waker | None = None

    @property
    def key(self) -> str:
        """The lock key; a listing root may name a key pattern or nothing at all instead."""
        if not self._key or pattern_of(self._key) == self._key:
            raise UsageError(f"{self.target}: name one lock key, as in redis://host:6379/0/locks/ds.")
        return self._key

    # -- reading ----------------------------------------------------------------------

    def status(self) -> LockStatus:
        return LockStatus(self.target, Kind.REDIS, self.key, (self._held(),))

    def _held(self) -> LockInfo:
        """The key that holds the lock of this name: the key itself, else a prefixed library's."""
        for key in candidates(self.key):
            info = describe(self.client, key)
            if info is not None:
                return info
        return LockInfo(path=self.key, state=State.ABSENT, format="redis")

    def wait_for_change(self, delay: float) -> None:
        """Woken at once by dlock's releases, and by another library's release or an expiry
        where the server sends keyspace notifications (see wakeup); else after `delay`."""
        if self._waker is None:
            self._waker = Waker(self.client, candidates(self.key), channel(self.key))
        self._waker.wait(delay)

    # -- acquiring ----------------------------------------------------------------------

    def try_acquire(self, *, ttl: float, note: str, shared: bool = False) -> LeaseHandle:
        if shared:
            raise UsageError(f"{self.target}: a Redis lock is exclusive; there are no shared Redis locks.")
        token = uuid.uuid4().hex
        keys = [self.key, meta_key(self.key), fence_key(self.key), *candidates(self.key)[1:]]
        ms = int(ttl * 1000)
        started = time.time()
        fence = self.client.call(lambda r: r.eval(ACQUIRE, len(keys), *keys, token, ms, holder_json(token, ttl, note)))
        if fence:
            return RedisLease(self.client, self.key, token, ttl, expires_at=started + ttl, fence=int(fence))
        info = self._held()
        if info.state is State.CORRUPT:
            raise CorruptLock(f"{self.target}: {info.path} is {info.reason}.", remedy=Remedy.FORCE_RELEASE)
        raise LockBusy(f"{self.target} is locked{held_by(info)}.", holder=info)

    def adopt(self, token: str, *, ttl: float) -> LeaseHandle:
        return RedisLease(self.client, self.key, token, ttl, fence=self.owned_by(token).fence)

    def owned_by(self, token: str) -> LockInfo:
        info = describe(self.client, self.key)
        if info is None or info.fingerprint != fingerprint(token):
            raise NotOwner(f"{self.target}: the lock is not held under that token (it expired, or another holder has it).")
        return info

    # -- removing -----------------------------------------------------------------------

    def remove(self, *, force: bool, if_stale: bool, seen: LockInfo | None, include_waiters: bool = False) -> list[LockInfo]:
        current = self._held()
        if current.state is State.ABSENT:
            return []
        if not force:
            # A key with a TTL goes by itself when it expires; one without may have a holder
            # that means to keep it (redis-py Lock(timeout=None)). Neither is judged stale.
            raise LockBusy(f"{self.target} is held{held_by(current)}; a Redis lock is never stale "
                           "(Redis deletes an expired key itself).", holder=current, remedy=Remedy.FORCE_RELEASE)
        chosen = seen if seen is not None else current
        return [chosen] if self.delete(chosen, require_no_ttl=False) else []

    def delete(self, lock: LockInfo, *, require_no_ttl: bool, channel_key: str | None = None) -> bool:
        """Delete the key as judged: only while it still holds the token it was shown with."""
        signal = layout_of(lock.path).signal(lock.path) or ""
        keys = (lock.path, meta_key(lock.path), signal)
        flag = "1" if require_no_ttl else "0"
        return bool(self.client.call(lambda r: r.eval(DELETE, 3, *keys, lock.fingerprint or "", channel(channel_key or self.key), flag)))

    def force_preview(self, include_waiters: bool = False) -> list[LockInfo]:
        current = self._held()
        return [current] if current.state is not State.ABSENT else []

    # -- listing ------------------------------------------------------------------------

    def scan(self, *, depth: int, on_progress: ProgressCallback | None = None) -> FleetReport:
        """Every lock key matching this target's key pattern (`dlock list`); `depth` means
        nothing in a flat keyspace."""
        return keyspace.scan(self.client, self.target, self._key, on_progress)

    def remove_found(self, entries: list[FleetLock], *, dry_run: bool = False) -> list[Removal]:
        """Only keys that never expire go (a key with a TTL goes by itself), each only while it
        still has the token and no TTL it was judged with."""
        return [self._remove_found(entry, dry_run) for entry in entries]

    def _remove_found(self, entry: FleetLock, dry_run: bool) -> Removal:
        if entry.lock.expires_at is not None:
            return Removal(entry.dataset, entry.lock, "kept", "it has a TTL: Redis deletes it when it expires")
        if dry_run:
            return Removal(entry.dataset, entry.lock, "would-remove")
        if self.delete(entry.lock, require_no_ttl=True, channel_key=layout_of(entry.dataset).lock_name(entry.dataset)):
            return Removal(entry.dataset, entry.lock, "removed")
        return Removal(entry.dataset, entry.lock, "kept", "changed since it was judged")

    def close(self) -> None:
        if self._waker is not None:
            self._waker.close()
        self.client.close()


def open_backend(target: str, location: str, options: Options) -> Backend:
    return RedisBackend(location, options)
