"""Plain data that the API returns and the CLI renders; the JSON schema is these fields."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Iterable


class State(str, enum.Enum):
    ABSENT = "absent"
    HELD = "held"
    STALE = "stale"
    CORRUPT = "corrupt"

    @staticmethod
    def overall(states: Iterable[State]) -> State:
        """The state that speaks for several locks: corrupt, then held, then stale, else absent."""
        present = set(states)
        return next((state for state in (State.CORRUPT, State.HELD, State.STALE) if state in present), State.ABSENT)


class Kind(str, enum.Enum):
    """What a target is; the JSON `kind`."""

    DEEPLAKE = "deeplake"  # a Deep Lake dataset: lock files at the head of a branch
    DIRECTORY = "directory"  # any other directory or prefix: one lock file at its root
    ZOOKEEPER = "zookeeper"  # a lock node whose contenders are ephemeral children
    REDIS = "redis"  # a Redis key whose value is its holder's token (redis-py's layout)

    @property
    def session_bound(self) -> bool:
        """A lock that lives as long as its holder's session: several contenders, never stale,
        nothing for `clean` to remove, and no token another process could use."""
        return self is Kind.ZOOKEEPER

    @property
    def label(self) -> str:
        return {Kind.DEEPLAKE: "Deep Lake dataset", Kind.DIRECTORY: "directory", Kind.ZOOKEEPER: "ZooKeeper lock",
                Kind.REDIS: "Redis lock"}[self]


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who wrote a lock: what the lock file (or ZooKeeper node) says about its owner."""

    node_id: str | None = None  # aa:bb:cc:dd:ee:ff, from the lock file's first six bytes
    this_machine: bool = False
    pid: int | None = None
    host: str | None = None
    user: str | None = None
    note: str | None = None
    created: float | None = None
    tool: str | None = None  # "dlock/0.1.0", "deeplake" or None when unknown
    pid_alive: bool | None = None  # known only for a holder on this machine
    mode: str | None = None  # ZooKeeper: "write" or "read"
    node: str | None = None  # ZooKeeper: the contender's child node name
    session_id: str | None = None  # ZooKeeper: hex session id of the owner
    identifier: str | None = None  # ZooKeeper: node data that is not dlock's JSON

    def who(self) -> str:
        """For messages: user@host pid N (mode), or whatever identifies a holder dlock did not write."""
        name = (f"{self.user}@" if self.user else "") + (self.host or self.node_id or self.identifier or self.node or "?")
        pid = f" pid {self.pid}" if self.pid is not None else ""
        mode = f" ({self.mode})" if self.mode else ""
        return name + pid + mode


@dataclasses.dataclass(frozen=True)
class LockInfo:
    """One lock: a lock file, or one ZooKeeper contender."""

    path: str
    state: State
    version: str | None = None  # the Deep Lake commit the lock file guards; None for the root
    branch: str | None = None  # the branch whose head this version is
    format: str | None = None  # "deeplake-3.9", "deeplake-legacy", "dlock", "zookeeper"
    holder: Holder | None = None
    expires_at: float | None = None
    written_at: float | None = None
    age: float | None = None  # seconds since the holder last wrote the lock
    ttl: float | None = None
    store_modified: float | None = None
    clock_skew: float | None = None  # writer's clock minus the store's, seconds
    reason: str | None = None  # why corrupt
    warning: str | None = None
    waiting: bool = False  # ZooKeeper: a contender that does not hold the lock yet
    fingerprint: str | None = None  # identifies the exact object judged; removal checks it
    fence: int | None = None  # the holder's fencing number, when it has one (see dlock.fence)


@dataclasses.dataclass(frozen=True)
class LockStatus:
    """Every lock of one target, and the one `acquire` would take."""

    target: str
    kind: Kind
    lock_path: str
    locks: tuple[LockInfo, ...]
    atomic: bool = True  # False on stores without conditional writes: write-wait-verify only

    @property
    def state(self) -> State:
        return State.overall(lock.state for lock in self.locks if not lock.waiting)

    @property
    def primary(self) -> LockInfo | None:
        """The lock that `acquire` would take, if it exists."""
        return next((lock for lock in self.locks if lock.path == self.lock_path), None)


@dataclasses.dataclass(frozen=True)
class FleetLock:
    """One lock found under a root: the dataset (or lock node) it guards and how it was judged."""

    dataset: str
    lock: LockInfo


@dataclasses.dataclass
class FleetReport:
    """What `list` found under a root."""

    root: str
    kind: Kind  # of the locks found: lock files (DIRECTORY) or ZooKeeper nodes
    datasets: int
    locks: list[FleetLock]
    errors: list[str]  # directories that could not be listed, each a sentence

    def count(self, state: State) -> int:
        return sum(1 for entry in self.locks if entry.lock.state is state)


@dataclasses.dataclass(frozen=True)
class Removal:
    """What `clean` did with one lock."""

    dataset: str
    lock: LockInfo
    outcome: str  # "removed", "would-remove", "kept" (changed since judged), "failed"
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class CleanReport:
    report: FleetReport
    chosen: list[FleetLock]
    removals: list[Removal]


def held_by(info: LockInfo | None) -> str:
    """" by <holder>" for a sentence about a held lock, or nothing when the holder is unknown."""
    return f" by {info.holder.who()}" if info is not None and info.holder is not None else ""


def to_jsonable(value: Any) -> Any:
    """Dataclasses and enums to JSON-ready dicts, keeping field order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        result = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, LockStatus):
            result["state"] = value.state.value
        return result
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    return value
