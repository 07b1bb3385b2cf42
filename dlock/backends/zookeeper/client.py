"""One ZooKeeper session for one target: connecting, every request bounded by the timeout,
and kazoo's errors translated here, once, into dlock's.

kazoo's synchronous calls hang forever while quorum is lost, so every request is an
`_async` call waited on for at most the timeout. The outcomes a caller expects (no such
node, a node changed since it was read) are return values, not kazoo exceptions.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Callable, Iterable, cast
from urllib.parse import unquote, urlsplit

from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError

from dlock.backends.base import Options, shown
from dlock.errors import BackendError, DLockError, Refused, Remedy, UsageError

if TYPE_CHECKING:
    from kazoo.interfaces import IAsyncResult
    from kazoo.protocol.states import WatchedEvent, ZnodeStat

Watcher = Callable[["WatchedEvent"], None]
StateListener = Callable[[str], None]  # called with a kazoo KazooState

# A session that cannot answer within the timeout: the server is down or quorum is lost.
_UNANSWERED = (KazooTimeoutError, TimeoutError, ConnectionLoss, SessionExpiredError, ConnectionClosedError)


@dataclasses.dataclass(frozen=True)
class ZkTarget:
    """What a zk:// URL names: the ensemble, the lock node and digest credentials."""

    hosts: str
    path: str
    auth: str | None


def parse_target(target: str, options: Options) -> ZkTarget:
    parts = urlsplit(target)
    netloc = parts.netloc
    auth = options.zk_auth or os.environ.get("DLOCK_ZK_AUTH")
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        auth = auth or unquote(userinfo)
    hosts = netloc or os.environ.get("DLOCK_ZK_HOSTS", "")
    if not hosts:
        raise UsageError(f"{shown(target)}: no ZooKeeper hosts; write zk://host:2181/path or set DLOCK_ZK_HOSTS.")
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":") if ":" in host else (host, "", "2181")
        if not name.strip() or not port.isdigit():
            raise UsageError(f"{shown(target)}: {host!r} is not host:port.")
    path = "/" + parts.path.strip("/")
    if path == "/":
        raise UsageError(f"{shown(target)}: name the lock node, as in zk://{hosts}/locks/ds.")
    if auth is not None and ":" not in auth:
        raise UsageError(f"{shown(target)}: ZooKeeper credentials are user:password.")
    return ZkTarget(hosts, path, auth)


class ZkClient:
    """A started kazoo session; the target (without its password) names it in every error."""

    def __init__(self, target: str, spec: ZkTarget, timeout: float) -> None:
        self.target = target
        self.spec = spec
        self.timeout = timeout
        self._kazoo = self._start()

    def _start(self) -> KazooClient:
        auth = [("digest", self.spec.auth)] if self.spec.auth else None
        try:
            client = KazooClient(
                hosts=self.spec.hosts,
                timeout=self.timeout,
                auth_data=auth,
                # kazoo's default backs off up to an hour; a holder must reconnect fast.
                connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1.0},
                command_retry={"max_tries": 2, "delay": 0.1, "max_delay": 0.5},
            )
        except ValueError as exc:
            raise UsageError(f"{self.target}: bad ZooKeeper host list ({exc}).") from None
        try:
            client.start(timeout=self.timeout)
        except KazooTimeoutError:
            client.close()
            raise BackendError(
                f"{self.target}: cannot reach ZooKeeper at {self.spec.hosts} within {self.timeout:g}s. "
                "Check the hosts and that a quorum is up.", remedy=Remedy.ZK_TIMEOUT
            ) from None
        except Exception as exc:
            client.close()
            raise self._translate(exc) from exc
        return client

    # -- requests: each bounded, each failure one of dlock's errors ----------------------

    def children(self, path: str, watch: Watcher | None = None) -> list[str] | None:
        """The node's children, or None when it does not exist."""
        try:
            return list(cast(Iterable[str], self._bounded(self._kazoo.get_children_async(path, watch=watch))))
        except NoNodeError:
            return None

    def exists(self, path: str, watch: Watcher | None = None) -> ZnodeStat | None:
        """The node's stat, or None; the watch fires when it is created, changed or deleted."""
        return self._bounded(self._kazoo.exists_async(path, watch=watch))

    def get(self, path: str) -> tuple[bytes, ZnodeStat] | None:
        try:
            return cast("tuple[bytes, ZnodeStat]", self._bounded(self._kazoo.get_async(path)))
        except NoNodeError:
            return None

    def create_sequential(self, prefix: str, data: bytes) -> str:
        """An ephemeral sequential node `prefix<seq>`, its parents made if missing; its path."""
        try:
            return str(self._bounded(self._kazoo.create_async(prefix, data, ephemeral=True, sequence=True)))
        except NoNodeError:
            self._bounded(self._kazoo.ensure_path_async(prefix.rsplit("/", 1)[0]))
            return str(self._bounded(self._kazoo.create_async(prefix, data, ephemeral=True, sequence=True)))

    def delete(self, path: str, version: int = -1) -> bool:
        """Delete the node if it is still at `version` (-1: any); False if gone or changed."""
        try:
            self._bounded(self._kazoo.delete_async(path, version=version))
        except (NoNodeError, BadVersionError):
            return False
        return True

    def _bounded(self, pending: IAsyncResult) -> object:
        """Wait for one request at most the timeout. The node outcomes pass through for the
        caller to turn into a return value; everything else becomes a DLockError."""
        try:
            return pending.get(timeout=self.timeout)
        except (NoNodeError, NodeExistsError, BadVersionError):
            raise
        except Exception as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: Exception) -> DLockError:
        if isinstance(exc, NoAuthError):
            return Refused(f"{self.target}: the node's ACL does not allow this without credentials.", remedy=Remedy.ZK_AUTH)
        if isinstance(exc, AuthFailedError):
            return BackendError(f"{self.target}: ZooKeeper rejected the credentials.", remedy=Remedy.ZK_AUTH)
        if isinstance(exc, _UNANSWERED):
            return BackendError(
                f"{self.target}: ZooKeeper at {self.spec.hosts} did not answer within {self.timeout:g}s "
                "(server down or quorum lost)."
            )
        return BackendError(f"{self.target}: ZooKeeper error {type(exc).__name__}: {exc}")

    # -- the session -----------------------------------------------------------------

    @property
    def session_timeout(self) -> float:
        """Seconds the server keeps our session without hearing from us: the timeout we
        asked for, or less if the server negotiated it down."""
        negotiated = getattr(self._kazoo, "_session_timeout", None)
        return min(self.timeout, negotiated / 1000.0) if negotiated else self.timeout

    def add_listener(self, listener: StateListener) -> None:
        self._kazoo.add_listener(listener)

    def remove_listener(self, listener: StateListener) -> None:
        self._kazoo.remove_listener(listener)

    def close(self) -> None:
        try:
            self._kazoo.stop()
            self._kazoo.close()
        except Exception:  # noqa: BLE001  (closing is best effort; the session expires anyway)
            pass
