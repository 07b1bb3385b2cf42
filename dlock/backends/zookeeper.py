"""ZooKeeper lock nodes in kazoo's recipe layout (DESIGN 4), so dlock interoperates with
`zk.Lock`, `zk.WriteLock` and `zk.ReadLock` in other programs.

Contenders are ephemeral sequential children `<uuid hex>__lock__<seq>` (exclusive) and
`<uuid hex>__rlock__<seq>` (shared), ordered by sequence. An exclusive contender holds
the lock when no contender precedes it; a shared one when no exclusive one precedes it.
Exclusive and shared share one implementation, as in kazoo's recipe/lock.py: only the
node name and the names that block differ.

kazoo's synchronous calls hang forever while quorum is lost, so every call here is an
`_async` call bounded by the timeout. A kazoo lock holder is not told when its node is
deleted or its session expires: the lease watches its own node and the session itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import threading
import time
import uuid
import warnings
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from dlock._version import __version__
from dlock.backends.base import Backend, LeaseHandle, Options, ProgressCallback
from dlock.identity import current_user, pid_alive
from dlock.errors import BackendError, DLockError, LockBusy, LockLost, NotFound, Refused, Remedy, UsageError
from dlock.model import FleetLock, FleetReport, Holder, Kind, LockInfo, LockStatus, State, held_by as _by

WRITE, READ = "__lock__", "__rlock__"
CONTENDER = re.compile(r"^(?P<uuid>[0-9a-f]*)(?P<kind>__lock__|__rlock__)(?P<seq>-?\d{10})$")


@dataclasses.dataclass(frozen=True)
class Contender:
    name: str
    kind: str  # WRITE or READ
    sequence: str

    @property
    def mode(self) -> str:
        return "write" if self.kind == WRITE else "read"


def contenders(children: list[str]) -> list[Contender]:
    """The lock's contenders in lock order (kazoo compares the 10-digit sequences as text)."""
    found = []
    for child in children:
        match = CONTENDER.match(child)
        if match:
            found.append(Contender(child, match["kind"], match["seq"]))
    return sorted(found, key=lambda c: c.sequence)


def holds(contender: Contender, ordered: list[Contender]) -> bool:
    """A write contender holds when first; a read contender when no writer precedes it."""
    blocking = (WRITE, READ) if contender.kind == WRITE else (WRITE,)
    return not any(c.kind in blocking and c.sequence < contender.sequence for c in ordered)


# -- target parsing ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ZkTarget:
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
        raise UsageError(f"{_safe(target)}: no ZooKeeper hosts; write zk://host:2181/path or set DLOCK_ZK_HOSTS.")
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":") if ":" in host else (host, "", "2181")
        if not name.strip() or not port.isdigit():
            raise UsageError(f"{_safe(target)}: {host!r} is not host:port.")
    path = "/" + parts.path.strip("/")
    if path == "/":
        raise UsageError(f"{_safe(target)}: name the lock node, as in zk://{hosts}/locks/ds.")
    if auth is not None and ":" not in auth:
        raise UsageError(f"{_safe(target)}: ZooKeeper credentials are user:password.")
    return ZkTarget(hosts, path, auth)


def _safe(target: str) -> str:
    """The target as shown to users: never with its password."""
    parts = urlsplit(target)
    if "@" not in parts.netloc:
        return target
    return target.replace(parts.netloc, parts.netloc.rsplit("@", 1)[1], 1)


# -- the backend -----------------------------------------------------------------------------------


class ZooKeeperBackend(Backend):
    def __init__(self, target: str, options: Options) -> None:
        self.target = _safe(target)
        self.spec = parse_target(target, options)
        self.timeout = max(options.zk_timeout, 0.5)
        self.path = self.spec.path
        self.client = self._connect()
        self._changed = threading.Event()
        self._watching = False
        self._contender: str | None = None  # our node while we wait in line
        self._identifier = b""
        self._token = ""

    # -- plumbing ---------------------------------------------------------------------

    def _connect(self) -> Any:
        from kazoo.client import KazooClient  # noqa: PLC0415  (only for zk:// targets)
        from kazoo.handlers.threading import KazooTimeoutError  # noqa: PLC0415

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

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One bounded request: a kazoo `_async` call waited on for at most the timeout."""
        from kazoo.exceptions import NoNodeError, NodeExistsError, BadVersionError, NotEmptyError  # noqa: PLC0415

        try:
            return getattr(self.client, method + "_async")(*args, **kwargs).get(timeout=self.timeout)
        except (NoNodeError, NodeExistsError, BadVersionError, NotEmptyError):
            raise
        except Exception as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: BaseException) -> DLockError:
        name = type(exc).__name__
        if name == "NoAuthError":
            return Refused(f"{self.target}: the node's ACL does not allow this without credentials.", remedy=Remedy.ZK_AUTH)
        if name == "AuthFailedError":
            return BackendError(f"{self.target}: ZooKeeper rejected the credentials.", remedy=Remedy.ZK_AUTH)
        if name in ("KazooTimeoutError", "Timeout", "TimeoutError", "ConnectionLoss", "SessionExpiredError", "ConnectionClosedError"):
            return BackendError(
                f"{self.target}: ZooKeeper at {self.spec.hosts} did not answer within {self.timeout:g}s "
                "(server down or quorum lost)."
            )
        return BackendError(f"{self.target}: ZooKeeper error {name}: {exc}")

    def _children(self, watch: bool = False) -> list[str]:
        from kazoo.exceptions import NoNodeError  # noqa: PLC0415

        watcher = self._on_change if watch else None
        try:
            return list(self.call("get_children", self.path, watch=watcher))
        except NoNodeError:
            if watch:  # wake up when the lock node appears
                self.call("exists", self.path, watch=watcher)
            return []

    def _on_change(self, event: object) -> None:
        self._watching = False
        self._changed.set()

    def _ordered(self, watch: bool = False) -> list[Contender]:
        children = self._children(watch)
        ordered = contenders(children)
        if children and not ordered:
            raise UsageError(
                f"{self.target}: not a lock node (its children are not kazoo lock contenders such as "
                f"'<uuid>__lock__0000000001'). Check the path."
            )
        return ordered

    # -- reading ----------------------------------------------------------------------

    def status(self) -> LockStatus:
        ordered = self._ordered()
        infos = [info for info in (self._describe(c, ordered) for c in ordered) if info is not None]
        if not infos:
            infos = [LockInfo(path=self.path, state=State.ABSENT, format="zookeeper")]
        return LockStatus(self.target, Kind.ZOOKEEPER, self.path, tuple(infos))

    def _describe(self, contender: Contender, ordered: list[Contender]) -> LockInfo | None:
        return ZooKeeperView(self, self.path).describe(contender, ordered)


    # -- acquiring ----------------------------------------------------------------------

    def try_acquire(self, *, ttl: float, note: str, shared: bool = False) -> LeaseHandle:
        kind = READ if shared else WRITE
        if self._contender is None:
            self._enter_line(kind, ttl, note)
        ordered = self._ordered(watch=True)
        mine = next((c for c in ordered if c.name == self._contender), None)
        if mine is None:
            self._contender = None
            raise LockBusy(f"{self.target}: our place in line vanished (session trouble); trying again.")
        if holds(mine, ordered):
            node, self._contender = self._contender, None
            return ZkLease(self, f"{self.path}/{node}", self._token, ttl)
        blocker = next(c for c in ordered if c.sequence < mine.sequence and (c.kind == WRITE or kind == WRITE))
        info = self._describe(blocker, ordered)
        raise LockBusy(f"{self.target} is locked{_by(info)}.", holder=info)

    def _enter_line(self, kind: str, ttl: float, note: str) -> None:
        """Create our ephemeral sequential node once, and keep our place while we wait."""
        from kazoo.exceptions import NoNodeError  # noqa: PLC0415

        self._token = uuid.uuid4().hex
        self._identifier = json.dumps(_identity(self._token, ttl, note), separators=(",", ":")).encode()
        prefix = f"{self.path}/{self._token}{kind}"
        try:
            created = self.call("create", prefix, self._identifier, ephemeral=True, sequence=True)
        except NoNodeError:
            self.call("ensure_path", self.path)
            created = self.call("create", prefix, self._identifier, ephemeral=True, sequence=True)
        self._contender = created.rsplit("/", 1)[1]

    def wait_for_change(self, delay: float) -> None:
        """A children watch wakes us at once when the line moves (no polling)."""
        self._changed.wait(delay)
        self._changed.clear()

    def adopt(self, token: str, *, ttl: float) -> LeaseHandle:
        raise UsageError(
            f"{self.target}: a ZooKeeper lock lives with the session that holds it; it cannot be refreshed "
            "or released by token from another process. Stop the holder, or release it by force.",
            remedy=Remedy.FORCE_RELEASE,
        )

    def remove(
        self, *, force: bool, if_stale: bool, seen: LockInfo | None, include_waiters: bool = False
    ) -> list[LockInfo]:
        from kazoo.exceptions import BadVersionError, NoNodeError  # noqa: PLC0415

        current = self.status()
        present = [lock for lock in current.locks if lock.state is State.HELD]
        if not force:  # ephemeral nodes are never stale: they vanish with their session
            if present:
                raise LockBusy(f"{self.target} is held; ZooKeeper locks are never stale (they end with their session).")
            return []
        chosen = [lock for lock in present if include_waiters or not lock.waiting]
        removed = []
        for lock in chosen:
            version = int((lock.fingerprint or "0.0").rsplit(".", 1)[1])
            try:
                self.call("delete", lock.path, version=version)
            except (NoNodeError, BadVersionError):
                continue  # gone already, or not the node we looked at
            removed.append(lock)
        return removed

    def force_preview(self, include_waiters: bool = False) -> list[LockInfo]:
        return [lock for lock in self.status().locks
                if lock.state is not State.ABSENT and (include_waiters or not lock.waiting)]

    def scan(self, *, depth: int, on_progress: ProgressCallback | None = None) -> FleetReport:
        """Every lock node under this path (`dlock list zk://...`): nodes whose children are
        contenders, with one row per contender. Nothing here is ever stale: a dead holder's
        ephemeral node goes with its session, so `clean` finds nothing to remove."""
        from kazoo.exceptions import NoNodeError  # noqa: PLC0415

        if self.call("exists", self.path) is None:
            raise NotFound(f"{self.target}: no such node. Check the path.")
        report = FleetReport(self.target, Kind.ZOOKEEPER, 0, [], [])
        pending, scanned = [(self.path, 0)], 0
        while pending:
            node, level = pending.pop()
            try:
                children = list(self.call("get_children", node))
            except NoNodeError:
                continue
            scanned += 1
            ordered = contenders(children)
            if ordered:
                report.datasets += 1
                lock_node = ZooKeeperView(self, node)
                report.locks += [FleetLock(node, info) for c in ordered if (info := lock_node.describe(c, ordered))]
            elif level < depth:
                pending += [(f"{node.rstrip('/')}/{child}", level + 1) for child in children]
            if on_progress is not None:
                on_progress(scanned, len(report.locks))
        report.locks.sort(key=lambda entry: (entry.dataset, entry.lock.path))
        return report

    def close(self) -> None:
        try:
            self.client.stop()
            self.client.close()
        except Exception:  # noqa: BLE001  (closing is best effort; the session expires anyway)
            pass


class ZooKeeperView:
    """One lock node seen through a backend's session (the target's, or one found by list)."""

    def __init__(self, backend: ZooKeeperBackend, path: str) -> None:
        self.backend = backend
        self.path = path

    def describe(self, contender: Contender, ordered: list[Contender]) -> LockInfo | None:
        from kazoo.exceptions import NoNodeError  # noqa: PLC0415

        path = f"{self.path}/{contender.name}"
        try:
            data, stat = self.backend.call("get", path)
        except NoNodeError:  # released while we looked
            return None
        created = stat.ctime / 1000.0
        return LockInfo(
            path=path,
            state=State.HELD,
            format="zookeeper",
            holder=_holder(contender, data, stat),
            written_at=created,
            age=time.time() - created,
            waiting=not holds(contender, ordered),
            fingerprint=f"{stat.czxid:x}.{stat.version}",
        )


class ZkLease(LeaseHandle):
    """Held while our ephemeral node exists and our session lives."""

    def __init__(self, backend: ZooKeeperBackend, node: str, token: str, ttl: float) -> None:
        self.backend = backend
        self.path = node
        self.token = token
        self.ttl = ttl
        self.expires_at = time.time() + ttl
        self._callbacks: list[Callable[[str], None]] = []
        self._lost = False
        self._deadline: threading.Timer | None = None
        backend.client.add_listener(self._on_state)
        backend.call("exists", node, watch=self._on_node_event)

    def _on_state(self, state: str) -> None:
        from kazoo.protocol.states import KazooState  # noqa: PLC0415

        if state == KazooState.SUSPENDED:
            warnings.warn(
                f"{self.backend.target}: connection to ZooKeeper suspended; the lock is kept while the session "
                "lives and dlock is reconnecting.", stacklevel=1)
            # The server expires a session it has not heard from for the session timeout,
            # and may then give the lock to the next in line: past that, ours is gone even
            # if no server is reachable to say so (kazoo would stay SUSPENDED forever).
            self._cancel_deadline()
            negotiated = getattr(self.backend.client, "_session_timeout", None)
            session = min(self.backend.timeout, negotiated / 1000.0) if negotiated else self.backend.timeout
            self._deadline = threading.Timer(session, self._lose,
                                             ("no contact with ZooKeeper for longer than the session timeout; "
                                              "the session has expired and its lock node with it.",))
            self._deadline.daemon = True
            self._deadline.start()
        elif state == KazooState.CONNECTED:
            self._cancel_deadline()
        elif state == KazooState.LOST:
            self._cancel_deadline()
            self._lose("the ZooKeeper session expired, so its lock node is gone.")

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_node_event(self, event: Any) -> None:
        if event.type == "DELETED":
            self._lose("the lock node was deleted (released by force).")
        elif not self._lost:
            with_watch = self._on_node_event
            threading.Thread(target=self._rewatch, args=(with_watch,), daemon=True).start()

    def _rewatch(self, watcher: Callable[[Any], None]) -> None:
        try:
            if self.backend.call("exists", self.path, watch=watcher) is None:
                self._lose("the lock node was deleted (released by force).")
        except DLockError:
            pass

    def _lose(self, reason: str) -> None:
        if self._lost:
            return
        self._lost = True
        for callback in list(self._callbacks):
            callback(f"{self.backend.target}: {reason}")

    def on_lost(self, callback: Callable[[str], None]) -> None:
        self._callbacks.append(callback)

    def confirm(self) -> None:
        if self._lost:  # the node watch and the session listener set it
            raise LockLost(f"{self.backend.target}: the lock node is gone.")

    def refresh(self) -> float:
        if self._lost or self.backend.call("exists", self.path) is None:
            raise LockLost(f"{self.backend.target}: the lock node is gone.")
        self.expires_at = time.time() + self.ttl
        return self.expires_at

    def release(self) -> None:
        from kazoo.exceptions import NoNodeError  # noqa: PLC0415

        self._lost = True  # our own delete is not a loss
        self._cancel_deadline()
        try:
            self.backend.client.remove_listener(self._on_state)
            self.backend.call("delete", self.path)
        except NoNodeError:
            raise LockLost(f"{self.backend.target}: the lock node was already gone; nothing released.") from None
        finally:
            self.backend.close()


# -- identifiers -----------------------------------------------------------------------------------


def _identity(token: str, ttl: float, note: str) -> dict[str, Any]:
    return {"owner": token, "host": socket.gethostname(), "pid": os.getpid(), "user": current_user(),
            "created": time.time(), "ttl": ttl, "note": note, "tool": f"dlock/{__version__}"}


def _holder(contender: Contender, data: bytes, stat: Any) -> Holder:
    base = Holder(mode=contender.mode, node=contender.name, session_id=f"0x{stat.ephemeralOwner:x}",
                  created=stat.ctime / 1000.0)
    try:
        payload = json.loads(data.decode("utf-8")) if data else None
    except (UnicodeDecodeError, ValueError):
        payload = None
    if not isinstance(payload, dict) or not str(payload.get("tool", "")).startswith("dlock/"):
        text = data.decode("utf-8", errors="replace") if data else None
        return dataclasses.replace(base, identifier=text)
    host = payload.get("host") if isinstance(payload.get("host"), str) else None
    pid = payload.get("pid") if isinstance(payload.get("pid"), int) else None
    this_machine = host == socket.gethostname()
    return dataclasses.replace(
        base, host=host, pid=pid, this_machine=this_machine,
        user=payload.get("user") if isinstance(payload.get("user"), str) else None,
        note=payload.get("note") or None, tool=payload.get("tool"),
        pid_alive=pid_alive(pid) if this_machine and pid else None,
    )


def open_backend(target: str, location: str, options: Options) -> Backend:
    return ZooKeeperBackend(location, options)
