"""Waking a waiter as soon as the lock may be free, without polling hard.

Every release dlock makes PUBLISHes on KEY:dlock-released (recipe.DELETE). A release by
another library (redis-py's Lua delete, python-redis-lock's unlock) and an expiry publish
nothing of dlock's; a server with keyspace notifications on announces them on
`__keyspace@DB__:KEY` (notify-keyspace-events with K, and g for DEL, x for expiry: "Kgx",
or "KA"). dlock reads that setting (CONFIG GET) and never changes it; where CONFIG is not
allowed (an ACL, a managed service) it subscribes anyway, as a subscription that hears
nothing costs nothing. Where subscribing is refused, the caller's polling remains.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

from redis.exceptions import RedisError

from dlock.backends.redis.client import TIMEOUT, RedisClient
from dlock.errors import Refused

if TYPE_CHECKING:
    from redis.client import PubSub


def keyspace_channel(db: int, key: str) -> str:
    return f"__keyspace@{db}__:{key}"


def keyspace_notifications(client: RedisClient) -> bool | None:
    """Whether the server announces a key's deletion or expiry; None when it will not say."""
    try:
        reply = client.redis.config_get("notify-keyspace-events")
    except RedisError:
        return None
    flags = str(next(iter(reply.values()), "")) if reply else ""
    return "K" in flags and any(flag in flags for flag in "Agx")


class Waker:
    """A subscription to what announces a change of `keys`, opened on the first wait."""

    def __init__(self, client: RedisClient, keys: Sequence[str], own_channel: str) -> None:
        self.client = client
        self.keys = list(keys)
        self.own_channel = own_channel
        self._pubsub: PubSub | None = None
        self._polling = False  # subscribing was refused: the caller's pace alone

    def wait(self, delay: float) -> None:
        """Return when a release or expiry of a key is announced, or after `delay` seconds."""
        deadline = time.monotonic() + delay
        if self._pubsub is None and not self._polling and self._subscribe():
            return
        while (left := deadline - time.monotonic()) > 0:
            if self._polling:
                time.sleep(left)
                return
            message = self._next(left)
            if message is not None and message.get("type") == "message":
                return

    def _subscribe(self) -> bool:
        """Subscribe; True when the keys changed meanwhile. The subscription is confirmed
        before the keys are looked at, so a release between the caller's last look and now
        is not missed."""
        channels = [self.own_channel]
        if keyspace_notifications(self.client) is not False:
            channels += [keyspace_channel(self.client.spec.db, key) for key in self.keys]
        self._pubsub = self.client.redis.pubsub()
        pubsub = self._pubsub
        self.client.call(lambda r: pubsub.subscribe(*channels))
        confirmed, until = 0, time.monotonic() + TIMEOUT
        while confirmed < len(channels) and not self._polling:
            message = self._next(until - time.monotonic())
            if message is None:
                if time.monotonic() >= until:
                    self._give_up()
            elif message.get("type") == "subscribe":
                confirmed += 1
            else:
                return True
        return not self._polling and not self.client.call(lambda r: r.exists(*self.keys))

    def _next(self, timeout: float) -> dict[str, Any] | None:
        pubsub = self._pubsub
        assert pubsub is not None
        try:
            message: dict[str, Any] | None = self.client.call(lambda r: pubsub.get_message(timeout=max(0.0, timeout)))
            return message
        except Refused:  # NOPERM: the user's ACL grants no channels
            self._give_up()
            return None

    def _give_up(self) -> None:
        self.close()
        self._polling = True

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except RedisError:  # closing is best effort
                pass
            self._pubsub = None
