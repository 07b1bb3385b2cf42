"""Keeping a live Deep Lake 3.9 writer's lock valid from outside (`dlock guard`).

Deep Lake 3.9.52 never refreshes its own lock: its refresher thread calls
`refresh_lock(timeout=...)` on a method that takes no such argument and swallows the
TypeError, so the expiry stays at open + 300 s and a writer that runs longer is
unprotected while still alive. A guard rewrites the writer's own 18 bytes with a later
expiry: the same node id and pid tag, which is all Deep Lake compares (Lock.acquire,
refresh_lock), so the writer still takes the lock for its own and deletes it on close.

Each rewrite is conditional on the exact object the guard last saw, so a lock another
process wrote in between is never overwritten: the guard stops and says whose it is.
A guard works only on the writer's own machine, where its pid can be checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
import warnings
from typing import Callable, Iterable, Iterator

from dlock import codec
from dlock.api import options
from dlock.backends import tree
from dlock.backends.base import shown
from dlock.backends.judge import judge_lock
from dlock.backends.layout import LOCK_NAME, LockFile
from dlock.backends.lockfile import LockFileBackend
from dlock.durations import check_ttl, format_duration
from dlock.errors import CorruptLock, DLockError, NothingToGuard, UsageError
from dlock.fleet import DEFAULT_DEPTH
from dlock.identity import process_running, process_started
from dlock.model import held_by
from dlock.stores.base import Conflict, Store, Stored
from dlock.targets import FALLBACK, REGISTRY, open_backend, scheme_of

# Deep Lake's own schedule (deeplake.constants): a lock is valid for 300 s after each
# write, and its (broken) refresher would rewrite it every 120 s.
VALIDITY = codec.DEEPLAKE_TTL
INTERVAL = 120.0
CHECK_INTERVAL = 1.0  # how often the process and its lock are looked at
RESCAN_INTERVAL = 60.0  # guard_tree: a new writer's lock is valid 300 s, so found in time

# What a guard reports; the last four end the guarding of one lock.
GUARDING, REFRESHED, TROUBLE = "guarding", "refreshed", "error"
RELEASED, EXITED, REPLACED, STOPPED = "released", "exited", "replaced", "stopped"
ENDINGS = frozenset({RELEASED, EXITED, REPLACED, STOPPED})


@dataclasses.dataclass(frozen=True)
class GuardEvent:
    """One thing that happened to a guarded lock; `--json` prints these fields, one line each."""

    event: str  # guarding, refreshed, error, released, exited, replaced, stopped
    target: str  # the dataset (or the root of a tree being guarded)
    path: str  # the lock file
    pid: int  # the Deep Lake process whose lock it is
    expires_at: float | None = None  # the lock's expiry after this event, as written or seen
    refreshes: int = 0  # rewrites so far
    detail: str = ""  # a sentence for people
    time: float = dataclasses.field(default_factory=time.time)

    @property
    def ended(self) -> bool:
        """Is the guarding of this lock over?"""
        return self.event in ENDINGS


EventCallback = Callable[[GuardEvent], None]


@dataclasses.dataclass(frozen=True)
class Schedule:
    validity: float = VALIDITY  # each rewrite's expiry: now + validity
    interval: float = INTERVAL  # between rewrites
    check_interval: float = CHECK_INTERVAL

    def __post_init__(self) -> None:
        check_ttl(self.validity, what="validity")
        for name in ("interval", "check_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise UsageError(f"{name} {value!r} must be more than zero seconds.")
        if self.check_interval > self.interval:  # a rewrite happens only when the guard looks
            raise UsageError(f"the check interval ({format_duration(self.check_interval)}) must be at most the "
                             f"interval ({format_duration(self.interval)}).")
        if self.interval >= self.validity:
            raise UsageError(f"the interval ({format_duration(self.interval)}) must be shorter than the validity "
                             f"({format_duration(self.validity)}), or the lock expires between rewrites.")


class WriterGuard:
    """One Deep Lake writer's lock file, rewritten with a later expiry while its process lives."""

    def __init__(self, store: Store, target: str, path: str, stored: Stored, record: codec.LockRecord,
                 schedule: Schedule) -> None:
        assert record.pid is not None
        self.store, self.target, self.path, self.schedule = store, target, path, schedule
        self.stored = stored
        self.node_id, self.pid = record.node_id, record.pid
        self.expires_at = record.time
        self.started = process_started(record.pid)
        self.refreshes = 0
        self.next_refresh = 0.0  # at once: the lock may already have expired

    def step(self, now: float) -> GuardEvent | None:
        """Look at the process and its lock; rewrite the lock when due. The event, if any."""
        if not self._process_lives():
            current = self.store.read(self.path)
            if current is None:
                return self.event(RELEASED, f"Deep Lake pid {self.pid} exited and removed its lock.")
            return self.event(EXITED, f"Deep Lake pid {self.pid} exited without removing its lock; it is left as "
                                       "it is and goes stale when it expires.")
        ending = self._observe(self.store.read(self.path))
        if ending is not None or now < self.next_refresh:
            return ending
        return self._refresh(now)

    def _process_lives(self) -> bool:
        if self.started is None:  # no /proc: the pid is all there is
            return process_running(self.pid)
        return process_started(self.pid) == self.started

    def _observe(self, current: Stored | None) -> GuardEvent | None:
        """None while the lock is the writer's; the ending once it is gone or another's."""
        if current is None:
            return self.event(RELEASED, f"Deep Lake pid {self.pid} removed its lock.")
        if self.store.unchanged(current, self.stored):
            return None
        if self._is_writers(current):  # Deep Lake rewrote its own lock: guard that one
            self.stored = current
            self.expires_at = codec.decode(current.data).time
            return None
        info = judge_lock(LockFile(self.path), current, None)
        return self.event(REPLACED, f"the lock of Deep Lake pid {self.pid} was replaced{held_by(info)}; "
                                     "dlock never writes over a lock it did not see.")

    def _refresh(self, now: float) -> GuardEvent | None:
        expires_at = max(now + self.schedule.validity, self.expires_at)  # never sooner than it was
        data = codec.encode(codec.LockRecord(self.node_id, expires_at, pid=self.pid))
        try:
            written = self.store.replace(self.path, data, self.stored)
        except Conflict:  # changed since the look just now: judge what is there at the next step
            return self._observe(self.store.read(self.path))
        if not self._is_writers(written):  # a store without conditional writes read back another's
            return self._observe(written)
        self.stored, self.expires_at = written, expires_at
        self.refreshes += 1
        self.next_refresh = now + self.schedule.interval
        return self.event(REFRESHED, f"rewrote the lock of Deep Lake pid {self.pid}; "
                                      f"it now expires in {format_duration(expires_at - now)}.")

    def _is_writers(self, stored: Stored) -> bool:
        try:
            record = codec.decode(stored.data)
        except CorruptLock:
            return False
        return record.format == "deeplake-3.9" and record.node_id == self.node_id and record.pid == self.pid

    def event(self, event: str, detail: str) -> GuardEvent:
        return GuardEvent(event, self.target, self.path, self.pid, self.expires_at, self.refreshes, detail)


def live_writer(stored: Stored | None, pid: int | None = None) -> codec.LockRecord | None:
    """The record of a Deep Lake 3.9 lock held by a running process on this machine (by
    `pid` if given), else None. Deep Lake compares uuid.getnode(), and so do we."""
    if stored is None or stored.odd or stored.size is not None:
        return None
    try:
        record = codec.decode(stored.data)
    except CorruptLock:
        return None
    if record.format != "deeplake-3.9" or record.node_id != uuid.getnode() or record.pid is None:
        return None
    if pid is not None and record.pid != pid:
        return None
    return record if process_running(record.pid) else None


class Guard:
    """Every writer guarded by one process, looked at in turn from one thread."""

    def __init__(self, store: Store, schedule: Schedule, on_event: EventCallback | None) -> None:
        self.store, self.schedule = store, schedule
        self.on_event = on_event or (lambda event: None)
        self.writers: dict[str, WriterGuard] = {}
        self.endings: list[GuardEvent] = []

    def add(self, target: str, path: str, stored: Stored, record: codec.LockRecord) -> None:
        if path in self.writers:
            return
        writer = WriterGuard(self.store, target, path, stored, record, self.schedule)
        self.writers[path] = writer
        self.on_event(writer.event(GUARDING, f"guarding the lock of Deep Lake pid {record.pid}."))

    def step(self) -> None:
        for path, writer in list(self.writers.items()):
            try:
                event = writer.step(time.time())
            except DLockError as exc:  # the store failed: say so and try again at the next step
                event = writer.event(TROUBLE, str(exc))
            if event is None:
                continue
            self.on_event(event)
            if event.ended:
                del self.writers[path]
                self.endings.append(event)

    def stop(self) -> None:
        """Leave every lock as it is."""
        for path, writer in list(self.writers.items()):
            until = f" (valid until {time.strftime('%H:%M:%S', time.localtime(writer.expires_at))})"
            event = writer.event(STOPPED, "stopped; the lock is left as it is" + until + ".")
            self.on_event(event)
            self.endings.append(event)
        self.writers.clear()


def guard_dataset(
    target: str,
    *,
    pid: int | None = None,
    schedule: Schedule = Schedule(),
    stop: threading.Event | None = None,
    on_event: EventCallback | None = None,
    storage_options: dict[str, str] | None = None,
) -> list[GuardEvent]:
    """Keep the lock of every live Deep Lake writer of `target` (on this machine; only `pid`'s
    if given) valid until its process exits or removes it, or `stop` is set. Returns how each
    guarding ended; raises NothingToGuard when there is no such writer."""
    with _lock_files(target, storage_options) as backend:
        found = []
        for lock in backend.layout.layout().all_locks:
            if not lock.path.endswith(LOCK_NAME):  # Deep Lake's short (10 s) locks are never guarded
                continue
            stored = backend.store.read(lock.path)
            record = live_writer(stored, pid)
            if record is not None and stored is not None:
                found.append((lock.path, stored, record))
        if not found:
            whose = f" with pid {pid}" if pid is not None else ""
            raise NothingToGuard(f"{target}: no live Deep Lake writer{whose} found: no Deep Lake 3.9 lock there "
                                 "is held by a running process on this machine.")
        guard = Guard(backend.store, schedule, on_event)
        for path, stored, record in found:
            guard.add(target, path, stored, record)
        _run(guard, schedule, stop or threading.Event())
        return guard.endings


def guard_tree(
    root: str,
    *,
    depth: int = DEFAULT_DEPTH,
    rescan: float = RESCAN_INTERVAL,
    until_idle: bool = False,
    schedule: Schedule = Schedule(),
    stop: threading.Event | None = None,
    on_event: EventCallback | None = None,
    storage_options: dict[str, str] | None = None,
) -> list[GuardEvent]:
    """Guard every live Deep Lake writer of this machine under `root`, looking for new ones
    every `rescan` seconds, until `stop` is set (or, with `until_idle`, none is left)."""
    if not rescan > 0:
        raise UsageError(f"rescan {rescan!r} must be more than zero seconds.")
    stop = stop or threading.Event()
    with _lock_files(root, storage_options) as backend:
        guard = Guard(backend.store, schedule, on_event)
        for found in _live_writers(backend, root, depth):  # a first scan that fails is the command's error
            guard.add(*found)
        last_scan = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - last_scan >= rescan:
                last_scan = time.monotonic()
                _rescan(guard, backend, root, depth)
            guard.step()
            if until_idle and not guard.writers:
                break
            stop.wait(schedule.check_interval)
        guard.stop()
        return guard.endings


def _run(guard: Guard, schedule: Schedule, stop: threading.Event) -> None:
    guard.step()
    while guard.writers and not stop.wait(schedule.check_interval):
        guard.step()
    guard.stop()


def _rescan(guard: Guard, backend: LockFileBackend, root: str, depth: int) -> None:
    try:
        for found in _live_writers(backend, root, depth):
            guard.add(*found)
    except DLockError as exc:  # the writers already found are still guarded
        warnings.warn(f"{shown(root)}: looking for new Deep Lake writers failed ({exc}); trying again later.",
                      stacklevel=2)


def _live_writers(backend: LockFileBackend, root: str, depth: int) -> Iterable[tuple[str, str, Stored, codec.LockRecord]]:
    report, seen = tree.scan(backend.store, backend.dataset, root, depth=depth, validity=None)
    for problem in report.errors:
        warnings.warn(f"{problem} Deep Lake writers there are not guarded.", stacklevel=2)
    for entry in report.locks:
        stored = seen.get(entry.lock.path)
        record = live_writer(stored) if entry.lock.path.endswith(LOCK_NAME) else None
        if record is not None and stored is not None:
            yield entry.dataset, entry.lock.path, stored, record


@contextlib.contextmanager
def _lock_files(target: str, storage_options: dict[str, str] | None) -> Iterator[LockFileBackend]:
    """The lock-file backend of `target`: a guard has nothing to do on ZooKeeper or Redis."""
    refusal = UsageError(f"{shown(target)}: guard keeps Deep Lake lock files valid; give a dataset path or URL.")
    if REGISTRY.get(scheme_of(target), FALLBACK).lock_service:
        raise refusal
    with open_backend(target, options(storage_options=storage_options or {})) as backend:
        if not isinstance(backend, LockFileBackend):
            raise refusal
        yield backend
