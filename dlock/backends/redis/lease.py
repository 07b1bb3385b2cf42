"""Holding a Redis lock: ours while the key's value is our token. Refresh and release are
Lua scripts that compare the token first (as redis-py's extend and release)."""

from __future__ import annotations

import time

from dlock.backends.base import LeaseHandle
from dlock.backends.redis.client import RedisClient
from dlock.backends.redis.recipe import DELETE, REFRESH, channel, fingerprint, meta_key
from dlock.errors import LockLost


class RedisLease(LeaseHandle):
    def __init__(self, client: RedisClient, key: str, token: str, ttl: float, expires_at: float | None = None,
                 fence: int | None = None) -> None:
        self.client = client
        self._fence = fence  # raised by the acquire script; None for a lease adopted without one
        self.path = key
        self.token = token
        self.ttl = ttl
        # The server counts the TTL from when it got the request: count from before we sent it.
        self.expires_at = time.time() + ttl if expires_at is None else expires_at

    def _gone(self, what: str) -> LockLost:
        return LockLost(f"{self.client.target}: the lock key no longer holds our token ({what}); "
                        "it expired or was released by force.")

    def refresh(self) -> float:
        started = time.time()
        ms = int(self.ttl * 1000)
        if not self.client.call(lambda r: r.eval(REFRESH, 2, self.path, meta_key(self.path), self.token, ms)):
            raise self._gone("refresh refused")
        self.expires_at = started + self.ttl
        return self.expires_at

    def fence(self) -> int:
        if self._fence is None:
            raise LockLost(f"{self.client.target}: this lock was taken without a fencing number.")
        return self._fence

    def confirm(self) -> None:
        if self.client.call(lambda r: r.get(self.path)) != self.token.encode():
            raise self._gone("checked")

    def release(self) -> None:
        keys = (self.path, meta_key(self.path), "")
        if not self.client.call(lambda r: r.eval(DELETE, 3, *keys, fingerprint(self.token), channel(self.path), "0")):
            raise self._gone("nothing released")
