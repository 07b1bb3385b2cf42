"""One Redis connection for one target: parsing the URL, every request bounded by a socket
timeout, and redis-py's errors translated here, once, into dlock's."""

from __future__ import annotations

import dataclasses
import os
import ssl
from typing import Callable, Mapping, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (AskError, AuthenticationError, ClusterCrossSlotError, ClusterError, NoPermissionError, RedisError,
                              ResponseError, TryAgainError)
from redis.retry import Retry

from dlock.backends.base import shown
from dlock.errors import BackendError, DLockError, Refused, Remedy, UsageError

# Connect and reply timeout: an unreachable server is reported within seconds.
TIMEOUT = 5.0
DEFAULT_PORT = 6379

# redis-py's TLS keywords, which its URLs also take as query parameters (?ssl_ca_certs=...).
TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
TLS_SETTINGS = TLS_FILES + ("ssl_cert_reqs", "ssl_check_hostname")
CERT_REQS = ("required", "optional", "none")
HOST_MISMATCH = (62, 64)  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


@dataclasses.dataclass(frozen=True)
class TlsSettings:
    """How a rediss:// connection trusts the server and proves itself: redis-py's defaults."""

    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: str = "required"
    ssl_check_hostname: bool = True

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
    tls_settings: TlsSettings = TlsSettings()

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def parse_target(target: str, settings: Mapping[str, str] | None = None) -> RedisTarget:
    """The URL, and TLS settings from its query (or DLOCK_REDIS_URL's) and `-o NAME=VALUE`."""
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
    tls = (server.scheme or parts.scheme).lower() == "rediss"
    given = {**dict(parse_qsl(server.query)), **dict(parse_qsl(parts.query)), **(settings or {})}
    return RedisTarget(
        host=server.hostname, port=port, db=int(db_text), key=unquote(key),
        username=unquote(server.username) if server.username else None,
        password=unquote(server.password) if server.password is not None else None,
        tls=tls, tls_settings=tls_settings(shown(target), tls, given),
    )


def tls_settings(target: str, tls: bool, given: Mapping[str, str]) -> TlsSettings:
    """redis-py's TLS keywords from text; anything else, or TLS settings without rediss://,
    is a usage error rather than silently ignored (a "?" in a key is written %3F)."""
    for name, text in given.items():
        if name not in TLS_SETTINGS:
            raise UsageError(f"{target}: a Redis target takes no setting {name!r}; it takes {', '.join(TLS_SETTINGS)}, "
                             "and a ? in a key is written %3F.")
        if not tls:
            raise UsageError(f"{target}: {name} is a TLS setting; write rediss:// to use TLS.")
        if name in TLS_FILES and not os.path.isfile(text):
            raise UsageError(f"{target}: {name} {text!r} is not a file.")
    cert_reqs = given.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in CERT_REQS:
        raise UsageError(f"{target}: ssl_cert_reqs is one of {', '.join(CERT_REQS)}, not {cert_reqs!r}.")
    check_hostname = given.get("ssl_check_hostname", "true").lower()
    if check_hostname not in ("true", "false"):
        raise UsageError(f"{target}: ssl_check_hostname is true or false, not {check_hostname!r}.")
    return TlsSettings(given.get("ssl_ca_certs"), given.get("ssl_certfile"), given.get("ssl_keyfile"),
                       cert_reqs, check_hostname == "true")


class RedisClient:
    """A connection pool to one server; the target (without its password) names every error."""

    def __init__(self, target: str, spec: RedisTarget) -> None:
        self.target = target
        self.spec = spec
        self.redis = redis.Redis(
            host=spec.host, port=spec.port, db=spec.db, username=spec.username, password=spec.password,
            ssl=spec.tls, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT,
            **(dataclasses.asdict(spec.tls_settings) if spec.tls else {}),
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
        if isinstance(exc, (AskError, ClusterCrossSlotError, ClusterError, TryAgainError)) or "cluster mode" in text:
            # The lock key and KEY:dlock hash to different slots, and MOVED is not followed.
            return BackendError(f"{self.target}: Redis at {self.spec.server} is a Redis Cluster node ({text}); "
                                "dlock speaks to one server and does not support Redis Cluster.")
        if isinstance(exc, ResponseError):
            return BackendError(f"{self.target}: Redis refused the request: {text}")
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_code in HOST_MISMATCH:
            return BackendError(f"{self.target}: the TLS certificate of Redis at {self.spec.server} is not for that host "
                                f"({cause.verify_message.rstrip('.')}); connect by a name it lists.", remedy=Remedy.TLS_HOSTNAME)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return BackendError(f"{self.target}: the TLS certificate of Redis at {self.spec.server} is not trusted "
                                f"({cause.verify_message}).",
                                remedy=Remedy.TLS_CA)
        if isinstance(cause, ssl.SSLError):
            return BackendError(f"{self.target}: TLS with Redis at {self.spec.server} failed ({cause.reason or cause}); "
                                "check that the port serves TLS, and whether it wants a client certificate "
                                "(the ssl_certfile and ssl_keyfile settings).")
        if isinstance(cause, ConnectionResetError) and not self.spec.tls:
            return BackendError(f"{self.target}: Redis at {self.spec.server} closed the connection at once; "
                                "if that port serves TLS, write rediss://.")
        serves = " and serves TLS" if self.spec.tls else ""
        return BackendError(f"{self.target}: cannot reach Redis at {self.spec.server} ({text}). "
                            f"Check the host, port and that the server is up{serves}.")

    def close(self) -> None:
        try:
            self.redis.close()
        except RedisError:  # closing is best effort
            pass
