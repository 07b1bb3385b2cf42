"""Lock files beside a dataset, on any Store: layout, judging, acquire, takeover, refresh, release.

Which file Deep Lake checks: it locks the head commit it opens. That is
`<dataset>/dataset_lock.lock` while the head is the first commit, otherwise
`<dataset>/versions/<head>/dataset_lock.lock`; version_control_info.json names each
branch's head. A lock at the root of a dataset with commits does not stop Deep Lake.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import math
import os
import re
import secrets
import socket
import time
import uuid

from dlock import codec
from dlock._version import __version__
from dlock.backends.base import Backend, LeaseHandle, Options
from dlock.backends.store import MAX_INFO_BYTES, AlreadyExists, Conflict, Store, Stored
from dlock.durations import MAX_TTL, format_duration
from dlock.identity import current_user, pid_alive
from dlock.errors import CorruptLock, DLockError, LockBusy, LockLost, NotFound, NotOwner, UsageError
from dlock.model import Holder, LockInfo, LockStatus, State, held_by as _by

LOCK_NAME = "dataset_lock.lock"
VERSION_INFO = "version_control_info.json"
FIRST_COMMIT = "firstdbf9474d461a19e9333c2fd19b46115348f"
# Deep Lake's commit ids are 40 lowercase hex digits (or FIRST_COMMIT). Ids read from the
# store become paths (versions/<id>/), so nothing else is ever used as one.
COMMIT_ID = re.compile(r"[0-9a-f]{40}")
# No lock lives longer than the longest ttl dlock writes; a time further ahead is garbage.
MAX_AHEAD = MAX_TTL + 86400.0
# Deep Lake 3.9 also takes short (10 s) locks at the root while it writes these files.
SHORT_LOCKS = ("version_control_info.lock", "queries.lock")


@dataclasses.dataclass(frozen=True)
class LockFile:
    path: str
    version: str | None = None
    branch: str | None = None


@dataclasses.dataclass(frozen=True)
class Layout:
    kind: str  # "deeplake" or "directory"
    target_lock: LockFile  # the one acquire takes
    all_locks: tuple[LockFile, ...]


class LockFileBackend(Backend):
    def __init__(self, store: Store, dataset: str, target: str, options: Options) -> None:
        self.store = store
        self.dataset = dataset
        self.target = target
        self.options = options
        self.atomic = store.atomic

    # -- layout -------------------------------------------------------------------

    def layout(self) -> Layout:
        """Every lock file of the dataset, and the one acquire takes."""
        kind, target_lock, branches = self._locate()
        heads = {commit: branch for branch, commit in branches.items()}
        locks = [LockFile(self.store.join(self.dataset, name)) for name in (LOCK_NAME, *SHORT_LOCKS)]
        for commit in sorted(filter(is_commit_id, self.store.list_dirs(self.store.join(self.dataset, "versions")))):
            path = self.store.join(self.dataset, "versions", commit, LOCK_NAME)
            locks.append(LockFile(path, commit, heads.get(commit)))
        by_path = {lock.path: index for index, lock in enumerate(locks)}
        if target_lock.path in by_path:
            locks[by_path[target_lock.path]] = target_lock
        else:
            locks.append(target_lock)
        return Layout(kind, target_lock, tuple(locks))

    def ensure_exists(self) -> None:
        """NotFound unless the dataset exists (one or two requests, no listing of versions)."""
        self._locate()

    def _locate(self) -> tuple[str, LockFile, dict[str, str]]:
        """(kind, the lock acquire takes, branch heads) in as few requests as possible:
        version_control_info.json first, since its presence also proves the dataset exists."""
        info = self._version_info()
        if info is None and not self.store.is_dir(self.dataset):
            raise NotFound(f"{self.target}: {self.store.missing_reason(self.dataset)}")
        branches, commits = info or ({}, set())
        return ("deeplake" if info else "directory"), self._target_lock(branches, commits), branches

    def _version_info(self) -> tuple[dict[str, str], set[str]] | None:
        path = self.store.join(self.dataset, VERSION_INFO)
        stored = self.store.read(path, limit=MAX_INFO_BYTES)
        if stored is None:
            return None
        where = self.store.url(path)
        if stored.odd or stored.size is not None:
            raise CorruptLock(f"{where} is {stored.odd or 'larger than 32 MiB'}, not Deep Lake's version record; "
                              "dlock cannot tell which commit Deep Lake locks.")
        try:
            document = json.loads(stored.data)
            branches = {str(name): str(head) for name, head in document["branches"].items()}
            commits = {str(commit) for commit in document.get("commits", {})}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CorruptLock(
                f"{where} cannot be read, so dlock cannot tell which commit Deep Lake locks."
            ) from None
        for name, head in branches.items():
            if not is_commit_id(head):
                raise CorruptLock(f"{where}: branch {name!r} names the head {head!r}, which is not a Deep Lake "
                                  "commit id; dlock uses no such name as a path. Inspect the file.")
            if commits and head not in commits:
                raise CorruptLock(f"{where}: the head {head!r} of branch {name!r} is not among its commits; "
                                  "dlock locks only a commit Deep Lake records. Inspect the file.")
        return branches, {commit for commit in commits if is_commit_id(commit)} | set(branches.values())

    def _target_lock(self, branches: dict[str, str], commits: set[str]) -> LockFile:
        root = LockFile(self.store.join(self.dataset, LOCK_NAME))
        commit = self.options.commit
        if commit is not None and not is_commit_id(commit):
            raise UsageError(f"{self.target}: --commit {commit!r} is not a Deep Lake commit id (40 hex digits).")
        if commit is not None and commit != FIRST_COMMIT and commit not in commits:
            # A typo must not create a lock that guards nothing.
            where = "it has no such commit" if branches else "it is not a Deep Lake dataset"
            raise UsageError(f"{self.target}: cannot lock commit {commit!r}: {where}.")
        if commit is None and branches:
            if self.options.branch not in branches:
                known = ", ".join(sorted(branches))
                raise UsageError(f"{self.target}: no branch {self.options.branch!r} (branches: {known}).")
            commit = branches[self.options.branch]
        branch = next((name for name, head in branches.items() if head == commit), None)
        if commit is None or commit == FIRST_COMMIT:
            return dataclasses.replace(root, version=commit, branch=branch)
        return LockFile(self.store.join(self.dataset, "versions", commit, LOCK_NAME), commit, branch)

    # -- reading ------------------------------------------------------------------

    def status(self) -> LockStatus:
        layout = self.layout()
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
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(locks))) as pool:
            return list(pool.map(lambda lock: self.store.read(lock.path), locks))

    def _judge(self, lock: LockFile, stored: Stored | None) -> LockInfo:
        return judge_lock(lock, stored, self.options.validity)

    # -- writing ------------------------------------------------------------------

    def try_acquire(self, *, ttl: float, note: str, shared: bool = False) -> LeaseHandle:
        if shared:
            raise UsageError(f"{self.target}: lock files have no shared mode; --shared is for ZooKeeper targets.")
        kind, lock, _ = self._locate()
        if lock.version and lock.path != self.store.join(self.dataset, LOCK_NAME):
            self.store.prepare_parent(lock.path)  # a head validated above, as Deep Lake does
        token = secrets.token_hex(16)
        data = _new_lock_bytes(token, ttl, note)
        try:
            stored = self.store.create(lock.path, data)
        except AlreadyExists:
            stored = self._take_over_stale(lock, data, token)
        try:
            self._insist_ours(lock, stored, token)
            if kind == "deeplake" and self.store.deeplake_settle > 0:
                stored = self._outlast_deeplake_verify(lock, stored, token)
            return FileLease(self, lock.path, token, ttl, note, stored)
        except LockBusy:
            raise  # not ours: removes nothing
        except BaseException:
            self._give_back(lock.path, stored)  # taken, but never handed to the caller
            raise

    def _insist_ours(self, lock: LockFile, stored: Stored | None, token: str) -> None:
        """A lease never holds bytes that are not its own: Deep Lake writes in place and
        unconditionally, so what a won create reads back can already be Deep Lake's."""
        if stored is None or _owner(stored) != token:
            info = self._judge(lock, stored)
            raise LockBusy(f"{self.target} was locked{_by(info)} at the same moment; it holds the lock.", holder=info)

    def _outlast_deeplake_verify(self, lock: LockFile, stored: Stored, token: str) -> Stored:
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
            raise CorruptLock(
                f"{lock.path} is corrupt ({info.reason}). Inspect it, then `dlock release --force` removes it."
            )
        if info.state is State.HELD:
            if _owner(current) == token:  # our own write, answered as a conflict after a retry
                return current
            raise LockBusy(f"{self.target} is locked{_by(info)}.", holder=info)
        try:
            return self.store.replace(lock.path, data, current)
        except Conflict:
            again = self.store.read(lock.path)
            if again is not None and _owner(again) == token:
                return again
            raise LockBusy(f"{self.target} was taken over by another process first.") from None

    def adopt(self, token: str, *, ttl: float) -> LeaseHandle:
        lock = self._locate()[1]
        current = self.store.read(lock.path)
        if current is None:
            raise NotOwner(f"{self.target} is not locked; the lock was released or removed. Acquire it again.")
        if _owner(current) != token:
            raise NotOwner(f"{self.target}: the token does not own this lock (it was taken over or forced away).")
        return FileLease(self, lock.path, token, ttl, None, current)

    def remove(
        self, *, force: bool, if_stale: bool, seen: LockInfo | None, include_waiters: bool = False
    ) -> list[LockInfo]:
        lock = self._locate()[1]
        current = self.store.read(lock.path)
        info = self._judge(lock, current)
        if current is None:
            return []
        if seen is not None and not _same_holder(seen, info):
            raise LockBusy(f"{lock.path} changed hands since it was shown; look again before removing it.", holder=info)
        if info.state is State.CORRUPT and not force:
            raise CorruptLock(f"{lock.path} is corrupt ({info.reason}); only --force removes it.")
        if info.state is State.HELD and not force:
            raise LockBusy(f"{self.target} is locked{_by(info)}; it is not stale.", holder=info)
        try:
            self.store.delete(lock.path, current)
        except Conflict:
            raise LockBusy(f"{lock.path} changed while dlock removed it; look again.") from None
        return [info]

    # -- lease operations (FileLease calls these) ------------------------------------

    def refresh_lease(self, lease: FileLease) -> Stored:
        data = _new_lock_bytes(lease.token, lease.ttl, lease.note, created=lease.created, node_id=lease.node_id)
        expected = lease.stored
        try:
            stored = self.store.replace(lease.path, data, expected)
        except Conflict:
            current = self.store.read(lease.path)
            if current is None or _owner(current) != lease.token:
                raise LockLost(f"{self.target}: the lock was removed or taken over by someone else.") from None
            # Ours, but the store's version moved (a retried write): refresh on what is there.
            try:
                stored = self.store.replace(lease.path, data, current)
            except Conflict:
                raise LockLost(f"{self.target}: the lock changed under us and is no longer ours.") from None
        if _owner(stored) != lease.token:  # overwritten right after our replace (Deep Lake writes in place)
            raise LockLost(f"{self.target}: the lock was overwritten by another writer and is no longer ours.")
        return stored

    def confirm_lease(self, lease: FileLease) -> None:
        """One read: LockLost unless the lock file still carries our token."""
        current = self.store.read(lease.path)
        if current is None:
            raise LockLost(f"{self.target}: the lock was removed (released by force?) and is no longer ours.")
        if _owner(current) != lease.token:
            info = self._judge(LockFile(lease.path), current)
            raise LockLost(f"{self.target}: the lock was taken over{_by(info)} and is no longer ours.")

    def release_lease(self, lease: FileLease) -> None:
        try:
            self.store.delete(lease.path, lease.stored)
            return
        except Conflict:
            current = self.store.read(lease.path)
        if current is None or _owner(current) != lease.token:
            raise LockLost(f"{self.target}: the lock was already removed or taken over; nothing released.")
        try:
            self.store.delete(lease.path, current)
        except Conflict:
            raise LockLost(f"{self.target}: the lock changed under us; nothing released.") from None


def judge_lock(lock: LockFile, stored: Stored | None, validity: float | None, now: float | None = None) -> LockInfo:
    """What a lock file says, judged at `now`: absent, held, stale or corrupt."""
    base = LockInfo(path=lock.path, state=State.ABSENT, version=lock.version, branch=lock.branch)
    if stored is None:
        return base
    now = time.time() if now is None else now
    fingerprint = _fingerprint(stored)
    corrupt = dataclasses.replace(base, state=State.CORRUPT, store_modified=stored.modified, fingerprint=fingerprint)
    if stored.odd:
        return dataclasses.replace(corrupt, reason=f"it is {stored.odd}, not a lock file")
    if stored.size is not None:
        return dataclasses.replace(corrupt, reason=f"{stored.size} bytes, far more than any lock file")
    try:
        record = codec.decode(stored.data)
    except CorruptLock as exc:
        return dataclasses.replace(corrupt, reason=str(exc))
    expires_at, written_at, ttl = _times(record, validity)
    if expires_at - now > MAX_AHEAD:
        return dataclasses.replace(
            corrupt, reason=f"its time lies {format_duration(expires_at - now)} ahead; no lock lives that long"
        )
    state = State.HELD if expires_at > now else State.STALE
    holder = _holder(record)
    skew = written_at - stored.modified if (stored.modified is not None and written_at is not None) else None
    return dataclasses.replace(
        base,
        state=state,
        format=record.format,
        holder=holder,
        expires_at=expires_at,
        written_at=written_at,
        age=None if written_at is None else now - written_at,
        ttl=ttl,
        store_modified=stored.modified,
        clock_skew=skew,
        warning=_unprotected_warning(state, holder, record),
        fingerprint=fingerprint,
    )


def _times(record: codec.LockRecord, validity: float | None) -> tuple[float, float | None, float | None]:
    """(expires_at, written_at, ttl) under the record's time convention (DESIGN 3.2)."""
    if not record.time_is_expiry:
        validity = validity or codec.DEEPLAKE_TTL
        return record.time + validity, record.time, validity
    payload = record.payload or {}
    ttl = _number(payload.get("ttl"))
    written = _number(payload.get("written"))
    if record.payload is None and record.format == "deeplake-3.9":
        ttl = codec.DEEPLAKE_TTL
    if written is None and ttl is not None:
        written = record.time - ttl
    return record.time, written, ttl


class FileLease(LeaseHandle):
    def __init__(
        self, backend: LockFileBackend, path: str, token: str, ttl: float, note: str | None, stored: Stored
    ) -> None:
        self.backend = backend
        self.path = path
        self.token = token
        self.ttl = ttl
        self.stored = stored
        record = codec.decode(stored.data)
        payload = record.payload or {}
        self.node_id = record.node_id  # kept across refreshes: the holder's identity
        self.note = note if note is not None else str(payload.get("note") or "")
        self.created = _number(payload.get("created")) or time.time()
        self.expires_at = record.time

    def refresh(self) -> float:
        self.stored = self.backend.refresh_lease(self)
        self.expires_at = codec.decode(self.stored.data).time
        return self.expires_at

    def release(self) -> None:
        self.backend.release_lease(self)

    def confirm(self) -> None:
        self.backend.confirm_lease(self)


def _same_holder(seen: LockInfo, now: LockInfo) -> bool:
    """The lock the user was shown, perhaps refreshed since (a refresh keeps the holder)."""
    if seen.holder is None or now.holder is None:
        return seen.fingerprint == now.fingerprint
    identity = ("node_id", "pid", "host", "created", "tool")
    return all(getattr(seen.holder, field) == getattr(now.holder, field) for field in identity)


def _new_lock_bytes(
    token: str, ttl: float, note: str | None, created: float | None = None, node_id: int | None = None
) -> bytes:
    now = time.time()
    payload = {
        "owner": token,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "user": current_user(),
        "created": created if created is not None else now,
        "written": now,
        "ttl": ttl,
        "note": note or "",
        "tool": f"dlock/{__version__}",
    }
    node = codec.random_node_id() if node_id is None else node_id
    return codec.encode(codec.LockRecord(node, now + ttl, payload=payload))


def _owner(stored: Stored) -> str | None:
    try:
        return codec.decode(stored.data).owner_token
    except CorruptLock:
        return None


def _fingerprint(stored: Stored) -> str:
    return hashlib.sha256(stored.data + repr(stored.version).encode()).hexdigest()[:16]


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def is_commit_id(text: str) -> bool:
    return text == FIRST_COMMIT or COMMIT_ID.fullmatch(text) is not None


def _holder(record: codec.LockRecord) -> Holder:
    payload = record.payload or {}
    host = payload.get("host") if isinstance(payload.get("host"), str) else None
    if record.payload is not None:
        this_machine = host == socket.gethostname()
    else:  # Deep Lake compares uuid.getnode(); so do we
        this_machine = record.node_id == uuid.getnode()
    pid = record.pid if record.pid is not None else payload.get("pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2**31 else None
    return Holder(
        node_id=codec.format_node_id(record.node_id),
        this_machine=this_machine,
        pid=pid,
        host=host,
        user=_text(payload.get("user")),
        note=_text(payload.get("note")),
        created=_number(payload.get("created")),
        tool=_text(payload.get("tool")) or ("deeplake" if record.format.startswith("deeplake") else None),
        pid_alive=pid_alive(pid) if (this_machine and pid) else None,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _unprotected_warning(state: State, holder: Holder, record: codec.LockRecord) -> str | None:
    # Deep Lake 3.9.52 never refreshes its lock (its refresher's TypeError is swallowed),
    # so a writer that runs longer than 300 s is unprotected while still alive.
    if state is State.STALE and record.format == "deeplake-3.9" and holder.pid_alive:
        return (
            f"Deep Lake pid {holder.pid} on this machine is still running but its lock expired: "
            "Deep Lake 3.9 never refreshes its lock, so that writer is unprotected. Guard such jobs with `dlock run`."
        )
    if state is State.HELD and holder.this_machine and holder.pid_alive is False:
        return (
            f"the process that took it (pid {holder.pid} on this machine) has exited; "
            "unless its token is used to refresh it, the lock goes stale when it expires."
        )
    return None
