"""Waking a waiter when a lock file is released, instead of polling.

Waiters sleep on a board of release counts per lock file. A waiter's backend reads its
count once, before it looks at the lock again, so a release while it looks is never
missed; and before each sleep the waiter looks whether the lock is still held. The
board hears of releases:
- from this process's own stores (memory://, local disk), at their delete;
- on Linux, from inotify on the lock file itself (libc through ctypes, no dependency):
  one instance per process, read by one thread, so waiters wake at releases by other
  processes too. The watch is on the lock file's inode, not its directory, so the
  holder's own writes beside it (temp files, data files) wake nobody; a new lock file
  is a new inode, watched again at the next sleep.
On local disk the waiting processes of a machine stand in a line (a flock on a file of
dlock's own, QueuedWatcher), and only the first watches: a release wakes one process.
Elsewhere waiters sleep their delay: object stores have no notifications, and a lock
that expires sends nothing either, so a waiter's own delay (at most 1 s) finds that.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
import sys
import threading
import time
from collections import deque
from typing import Callable, Protocol


class Watcher(Protocol):
    def wait(self, delay: float) -> None:
        """Block until the watched lock may have been freed, at most `delay` seconds."""

    def close(self) -> None:
        """Done waiting (the lock was taken, or the waiter gave up)."""


class Sleeper:
    """No notifications: wait the whole delay."""

    def wait(self, delay: float) -> None:
        time.sleep(delay)

    def close(self) -> None:
        pass


class ReleaseBoard:
    """Releases of lock files in this process, by path. A release wakes one sleeping
    waiter on that path, the longest asleep: only one can take the lock, and when it
    releases in turn it wakes the next (waking them all costs each a failed try). A
    waiter that is busy trying when a release comes sees the count moved at its next
    wait, so no release goes unseen.

    No mutex: a sleeper queues itself, then looks at the count once more before it sleeps,
    and a release moves the count before it takes a sleeper off the queue, so either the
    sleeper sees the count moved or the release finds it queued. (With a mutex, a thread
    that acquired it while another held the GIL kept it while waiting for the GIL, and
    every thread releasing a lock queued behind it: with 8 writer threads, most sessions
    paid two hand-overs of the interpreter.) Two releases of one path at the same instant
    may move the count by one: it moved, which is all a waiter asks."""

    def __init__(self) -> None:
        self._releases: dict[str, int] = {}
        # A sleeper is a lock it holds and blocks on acquiring again; a release releases it.
        # (threading.Event would do, at the cost of a Condition and two more locks per wake.)
        self._sleepers: dict[str, deque[threading.Lock]] = {}
        # Paths with a sleeper taken off the queue that has not looked at the lock yet: it
        # will look after any release that finds it here, so such a release wakes nobody
        # more. A thread that releases and locks again in a loop would otherwise wake a
        # sleeper at every release, and each takes the GIL from it only to find the lock
        # taken again.
        self._waking: set[str] = set()

    def released(self, path: str) -> None:
        self._releases[path] = self._releases.get(path, 0) + 1
        sleepers = self._sleepers.get(path)
        while sleepers and path not in self._waking:
            self._waking.add(path)
            try:
                sleeper = sleepers.popleft()
            except IndexError:  # taken by another release, or gone to try
                self._waking.discard(path)
                continue  # one may have queued since, counting on a release that found us here
            sleeper.release()
            return

    def watcher(self, path: str, held: Callable[[], bool], spread: float = 0.0) -> BoardWatcher:
        return BoardWatcher(self, path, self._releases.get(path, 0), held, spread)

    def wait(self, path: str, seen: int, delay: float) -> tuple[int, bool]:
        """(the release count of `path`, woken): at once if the count moved from `seen`,
        else when a release wakes us or after `delay`."""
        count = self._releases.get(path, 0)
        if count != seen:
            return count, True
        sleeper = threading.Lock()
        sleeper.acquire()
        sleepers = self._sleepers.setdefault(path, deque())  # kept: one small queue per path waited on
        sleepers.append(sleeper)
        if self._releases.get(path, 0) == seen:
            sleeper.acquire(timeout=delay)
        try:
            sleepers.remove(sleeper)  # still queued: no release took us
            woken = False
        except ValueError:
            woken = True
            self._waking.discard(path)  # before we read the count: a release from now wakes another
        count = self._releases.get(path, 0)
        return count, woken or count != seen


class BoardWatcher:
    def __init__(self, board: ReleaseBoard, path: str, seen: int, held: Callable[[], bool],
                 spread: float = 0.0) -> None:
        self._board = board
        self._path = path
        self._seen = seen  # counted from the watcher's start: a release while we try again counts
        self._held = held  # is the lock file there? (and, on Linux, watch it)
        self._spread = spread

    def wait(self, delay: float) -> None:
        """Sleep while the lock file is there; a waiter that wakes to find it back (another
        waiter or a newcomer was quicker) sleeps on instead of trying, against the herd."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0 and self._held():
            self._seen, woken = self._board.wait(self._path, self._seen, left)
            if not woken:
                return
            if self._spread:
                # Every waiting process wakes at once; looking after a random pause, most
                # find the lock already taken by the first, and sleep on without trying.
                import random  # only for a waiter, as ctypes below

                time.sleep(random.uniform(0.0, self._spread))

    def held(self) -> bool:
        return self._held()

    def close(self) -> None:
        pass


# The first in line, woken by a release, gives the releasing process this long to take the
# lock again, as long as it has been first for less than PATIENCE (see QueuedWatcher.wait).
GRACE = 0.0005
PATIENCE = 0.05


class QueuedWatcher:
    """Waiting processes of one machine line up for a lock file, and only the first in line
    watches it: a release wakes one process, not every waiter (whose wake-ups, on a machine
    with few cores, take the CPU from the holder). The line is a blocking flock(2) on a file
    of dlock's own, outside the dataset; Linux wakes the next one of those blocked when the
    first lets go (since 4.20). Only a hint of whose turn it is: the lock file stays the lock.
    Behind the first, a waiter looks at the lock itself at its own pace (at most its delay
    apart), so one that dies, hangs or is not dlock delays nobody past that."""

    def __init__(self, line: Line, watcher: BoardWatcher) -> None:
        self._line = line
        self._watcher = watcher
        self._in_line = True  # Line.join() was called for us
        self._first_since: float | None = None

    def wait(self, delay: float) -> None:
        deadline = time.monotonic() + delay
        if not self._line.wait_first(delay):
            return
        if self._first_since is None:
            self._first_since = time.monotonic()
        while True:
            self._watcher.wait(deadline - time.monotonic())  # until the lock looks free, or time is up
            now = time.monotonic()
            if now >= deadline or now - self._first_since >= PATIENCE:
                return
            # A holder that runs short sessions in a loop is back for the lock within a
            # moment: letting it take the lock again spares a hand-over to another process
            # per session. Past PATIENCE, the first in line tries at once (sync.Mutex in Go
            # does the same: barging until a waiter has waited 1 ms).
            time.sleep(min(GRACE, deadline - now))
            if not self._watcher.held():
                return

    def close(self) -> None:
        if self._in_line:
            self._in_line = False
            self._line.leave()


class Line:
    """This process's place in the line for one lock directory, shared by its waiting
    threads: one thread blocks in flock(2) while any of them waits, and holds the flock
    (the process is first) until none does. Kept between waits, so that a loop of short
    sessions starts no thread per wait; the thread ends after IDLE seconds unused."""

    IDLE = 10.0

    def __init__(self, key: str, fd: int) -> None:
        self._key = key
        self._fd = fd
        self._changed = threading.Condition(threading.Lock())
        self._waiting = 0
        self._first = False
        threading.Thread(target=self._stand, name="dlock-line", daemon=True).start()

    def join(self) -> None:
        """(under _LINES_MUTEX: a line that ends is taken out of _LINES under it too)"""
        with self._changed:
            self._waiting += 1
            self._changed.notify_all()

    def leave(self) -> None:
        with self._changed:
            self._waiting -= 1
            if self._waiting == 0 and self._first:
                self._first = False
                _unlock(self._fd)  # the next process in line is first now

    def wait_first(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._first, timeout)

    def _stand(self) -> None:
        while True:
            with self._changed:
                wanted = self._changed.wait_for(lambda: self._waiting > 0 and not self._first, self.IDLE)
            if not wanted:
                if self._end():  # outside _changed: _end takes _LINES_MUTEX first, as _join_line does
                    return
                continue
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:
                pass  # no line to be had here (ENOLCK): our waiters watch as if first
            with self._changed:
                if self._waiting > 0:
                    self._first = True
                    self._changed.notify_all()
                else:
                    _unlock(self._fd)  # every waiter of ours left while we stood in line

    def _end(self) -> bool:
        with _LINES_MUTEX, self._changed:
            if self._waiting > 0:
                return False
            if _LINES.get(self._key) is self:
                del _LINES[self._key]
            self._tidy()
            os.close(self._fd)
            return True

    def _tidy(self) -> None:
        """Remove the line's file when nobody stands in it, so that waits leave nothing behind.
        A process that opened it just before stands in a line of its own until its wait
        ends: two first in line, both watching, which costs a wake-up and nothing else."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(self._fd).st_ino == os.lstat(self._key).st_ino:
                os.unlink(self._key)
        except OSError:
            pass  # someone stands in it (or it is gone): theirs to remove


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)


_LINES: dict[str, Line] = {}
_LINES_MUTEX = threading.Lock()


def _join_line(path: str) -> Line | None:
    """This process's line for the lock file at `path`, joined; None where there can be none."""
    key = _line_file(path)
    if key is None:
        return None
    with _LINES_MUTEX:
        line = _LINES.get(key)
        if line is None:
            try:
                fd = os.open(key, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError:
                return None
            line = _LINES[key] = Line(key, fd)
        line.join()
        return line


def _line_file(path: str) -> str | None:
    """The file whose flock is the line of waiters for the lock file at `path`: one per
    directory holding lock files (dlock's layout has one lock per directory), named by the
    directory's device and inode, in a directory of this user's own under $TMPDIR. None
    where that cannot be had safely (then every waiter watches the lock)."""
    try:
        directory = os.stat(os.path.dirname(path))
        home = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"dlock-{os.getuid()}")
        with contextlib.suppress(FileExistsError):
            os.mkdir(home, 0o700)
        mine = os.lstat(home)
    except OSError:
        return None
    if not stat.S_ISDIR(mine.st_mode) or mine.st_uid != os.getuid() or mine.st_mode & 0o077:
        return None  # not ours, or others may write in it
    return os.path.join(home, f"{directory.st_dev:x}-{directory.st_ino:x}.line")


# One board for the process: threads of one process share its memory and its files.
BOARD = ReleaseBoard()

# <sys/inotify.h>
IN_ATTRIB, IN_DELETE_SELF, IN_MOVE_SELF = 0x4, 0x400, 0x800  # unlink changes the link count: IN_ATTRIB
IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
IN_CLOEXEC, IN_DONT_FOLLOW = 0o2000000, 0x2000000
MASK = IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW
EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


class Inotify:
    """One inotify instance for the process, read by one daemon thread that posts any
    change of a watched lock file's inode (its unlink, its renaming away) to the board.
    One instance, never closed: closing one costs the kernel ~10 ms, and users have only
    128 of them. The kernel drops a watch itself when its file is gone (IN_IGNORED)."""

    def __init__(self, add_watch: Callable[[int, bytes, int], int], errno: Callable[[], int], fd: int) -> None:
        self._add_watch = add_watch
        self._errno = errno
        self._fd = fd
        self._mutex = threading.Lock()
        self._watched: dict[int, set[str]] = {}  # watch descriptor -> the lock file's path(s)
        threading.Thread(target=self._read, name="dlock-inotify", daemon=True).start()

    def watch(self, path: str) -> bool:
        """Post the next change of the lock file now at `path`; False when there is none."""
        # The watch is added and known under one mutex: the file's deletion right after the
        # add must not reach the reader before the watch is known, or the release is lost
        # and the waiter sleeps its whole delay.
        with self._mutex:
            wd = self._add_watch(self._fd, os.fsencode(path), MASK)
            if wd < 0:
                return self._errno() not in (errno.ENOENT, errno.ENOTDIR)  # other refusals: poll
            self._watched.setdefault(wd, set()).add(path)
        return True

    def _read(self) -> None:
        while True:
            try:
                events = os.read(self._fd, 64 * 1024)
            except OSError:
                return
            for path in self._changed(events):
                BOARD.released(path)

    def _changed(self, events: bytes) -> set[str]:
        changed: set[str] = set()
        offset = 0
        with self._mutex:
            while offset + EVENT.size <= len(events):
                wd, mask, _, length = EVENT.unpack_from(events, offset)
                offset += EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    changed.update(*self._watched.values())
                else:
                    changed.update(self._watched.pop(wd, set()) if mask & IN_IGNORED else self._watched.get(wd, set()))
        return changed


# inotify wakes every waiting process at a release: each looks again after a random pause
# of up to this long, so that most find the lock taken and do not try (see BoardWatcher).
HERD_SPREAD = 0.002

_INOTIFY: list[Inotify | None] = []  # made at the first wait on a local lock file, then kept
_INOTIFY_MADE = threading.Lock()


def inotify() -> Inotify | None:
    """The process's inotify reader, or None where there is none (not Linux, limit reached)."""
    with _INOTIFY_MADE:
        if not _INOTIFY:
            _INOTIFY.append(_new_inotify())
        return _INOTIFY[0]


def _new_inotify() -> Inotify | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only for a waiter: ~5 ms of import that `dlock status` need not pay

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(IN_CLOEXEC)
        add_watch = libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    return Inotify(add_watch, ctypes.get_errno, fd) if fd >= 0 else None


def _forget_in_child() -> None:
    """A forked child has no reader thread, shares the parent's inotify instance, and may
    have been forked while another thread held a mutex: it starts afresh. It closes its
    copies of the parent's places in line, which would otherwise hold them as long as it
    lives (a flock belongs to the open file, shared across fork)."""
    global BOARD, _INOTIFY_MADE, _LINES_MUTEX
    BOARD = ReleaseBoard()
    _INOTIFY_MADE = threading.Lock()
    _INOTIFY.clear()
    for line in _LINES.values():
        with contextlib.suppress(OSError):
            os.close(line._fd)
    _LINES.clear()
    _LINES_MUTEX = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def watch_file(path: str) -> Watcher:
    """A watcher on the lock file at `path` on local disk: releases in this process always,
    in others too where inotify watches it, in a line of waiters where one can be made."""
    path = os.path.abspath(path)
    reader = inotify()
    if reader is None:
        return BOARD.watcher(path, lambda: os.path.lexists(path))
    line = _join_line(path)
    if line is None:
        return BOARD.watcher(path, lambda: reader.watch(path), spread=HERD_SPREAD)
    return QueuedWatcher(line, BOARD.watcher(path, lambda: reader.watch(path)))
