"""One Redis connection for one target: parsing the URL, every request bounded by a socket
timeout, and redis-py's errors translated here, once, into dlock's."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError, ResponseError
from redis.retry import Retry

from dlock.backends.base import shown
from dlock.errors import BackendError, DLockError, Refused, UsageError

# Connect and reply timeout: an unreachable server is reported within seconds.
TIMEOUT = 5.0
DEFAULT_PORT = 6379

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """What a redis:// URL names: the server, the database and the key (or key pattern)."""

    host: str
    port: int
    db: int
    key: str
    username: str | None
    password: str | None
    tls: bool

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def parse_target(target: str) -> RedisTarget:
    parts = urlsplit(target)
    server = urlsplit(os.environ.get("DLOCK_REDIS_URL", "")) if not parts.netloc else parts
    if not server.hostname:
        raise UsageError(f"{shown(target)}: no Redis server; write redis://host:6379/0/KEY or set DLOCK_REDIS_URL.")
    db_text, _, key = parts.path.lstrip("/").partition("/")
    if not db_text.isdigit():
        raise UsageError(f"{shown(target)}: name the database and the key, as in redis://host:6379/0/locks/ds.")
    try:
        port = server.port or DEFAULT_PORT
    except ValueError:
        raise UsageError(f"{shown(target)}: the port is not a number.") from None
    return RedisTarget(
        host=server.hostname, port=port, db=int(db_text), key=unquote(key),
        username=unquote(server.username) if server.username else None,
        password=unquote(server.password) if server.password is not None else None,
        tls=(server.scheme or parts.scheme).lower() == "rediss",
    )


class RedisClient:
    """A connection pool to one server; the target (without its password) names every error."""

    def __init__(self, target: str, spec: RedisTarget) -> None:
        self.target = target
        self.spec = spec
        self.redis = redis.Redis(
            host=spec.host, port=spec.port, db=spec.db, username=spec.username, password=spec.password,
            ssl=spec.tls, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
            # No retries: an unreachable server is reported within TIMEOUT, not after redis-py's
            # default backoff. A holder's checks and refreshes retry on their own schedule.
            retry=Retry(NoBackoff(), 0),
        )

    def call(self, request: Callable[[redis.Redis], T]) -> T:
        """One request; any failure becomes a DLockError that names the target."""
        try:
            return request(self.redis)
        except RedisError as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: RedisError) -> DLockError:
        text = str(exc)
        if isinstance(exc, NoPermissionError) or text.startswith("NOPERM"):
            return Refused(f"{self.target}: the Redis user may not do this (NOPERM: the ACL refuses it). "
                           "Ask for access to the key and its commands.")
        if isinstance(exc, AuthenticationError) or text.startswith(("NOAUTH", "WRONGPASS")):
            return BackendError(f"{self.target}: Redis at {self.spec.server} rejected the credentials ({text}). "
                                "Give user:password in the URL or DLOCK_REDIS_URL.")
        if isinstance(exc, ResponseError):
            return BackendError(f"{self.target}: Redis refused the request: {text}")
        return BackendError(f"{self.target}: cannot reach Redis at {self.spec.server} ({text}). "
                            "Check the host, port and that the server is up.")

    def close(self) -> None:
        try:
            self.redis.close()
        except RedisError:  # closing is best effort
            pass
