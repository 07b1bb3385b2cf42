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
Elsewhere waiters sleep their delay: object stores have no notifications, and a lock
that expires sends nothing either, so a waiter's own delay (at most 1 s) finds that.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
import threading
import time
from collections import deque
from typing import Callable, Protocol


class Watcher(Protocol):
    def wait(self, delay: float) -> None:
        """Block until the watched lock may have been freed, at most `delay` seconds."""


class Sleeper:
    """No notifications: wait the whole delay."""

    def wait(self, delay: float) -> None:
        time.sleep(delay)


class ReleaseBoard:
    """Releases of lock files in this process, by path. A release wakes one sleeping
    waiter on that path, the longest asleep: only one can take the lock, and when it
    releases in turn it wakes the next (waking them all costs each a failed try). A
    waiter that is busy trying when a release comes sees the count moved at its next
    wait, so no release goes unseen."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._releases: dict[str, int] = {}
        self._sleepers: dict[str, deque[threading.Event]] = {}

    def released(self, path: str) -> None:
        with self._mutex:
            self._releases[path] = self._releases.get(path, 0) + 1
            sleepers = self._sleepers.get(path)
            if sleepers:
                sleepers.popleft().set()

    def watcher(self, path: str, held: Callable[[], bool], spread: float = 0.0) -> BoardWatcher:
        with self._mutex:
            return BoardWatcher(self, path, self._releases.get(path, 0), held, spread)

    def wait(self, path: str, seen: int, delay: float) -> tuple[int, bool]:
        """(the release count of `path`, woken): at once if the count moved from `seen`,
        else when a release wakes us or after `delay`."""
        with self._mutex:
            count = self._releases.get(path, 0)
            if count != seen:
                return count, True
            woken = threading.Event()
            self._sleepers.setdefault(path, deque()).append(woken)
        woken.wait(delay)
        with self._mutex:
            sleepers = self._sleepers.get(path)
            if not woken.is_set() and sleepers is not None:
                sleepers.remove(woken)
            if sleepers is not None and not sleepers:
                del self._sleepers[path]
            return self._releases.get(path, 0), woken.is_set()


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
        wd = self._add_watch(self._fd, os.fsencode(path), MASK)
        if wd < 0:
            return self._errno() not in (errno.ENOENT, errno.ENOTDIR)  # other refusals: poll
        with self._mutex:
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
    have been forked while another thread held the board's mutex: it starts afresh."""
    global BOARD, _INOTIFY_MADE
    BOARD = ReleaseBoard()
    _INOTIFY_MADE = threading.Lock()
    _INOTIFY.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def watch_file(path: str) -> Watcher:
    """A watcher on the lock file at `path` on local disk: releases in this process always,
    in others too where inotify watches it."""
    path = os.path.abspath(path)
    reader = inotify()
    if reader is None:
        return BOARD.watcher(path, lambda: os.path.lexists(path))
    return BOARD.watcher(path, lambda: reader.watch(path), spread=HERD_SPREAD)
