"""The contract every store keeps: read an object with its version, create one only if it is
absent, replace or delete one only if it is unchanged.

A store knows nothing of locks. The version is opaque (ETag, generation, inode and
mtime) and compared only for equality; dlock.backends.lockfile builds the lock on these
operations, once for every store.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, Hashable

if TYPE_CHECKING:
    from dlock.stores.notify import Watcher

# Bounds on what dlock reads from a store: a lock file is 18 bytes (Deep Lake) or a few
# hundred (dlock); Deep Lake's version_control_info.json grows with its commits.
MAX_LOCK_BYTES = 64 * 1024
MAX_INFO_BYTES = 32 * 1024 * 1024


class AlreadyExists(Exception):
    """create(): the object is there."""


class Conflict(Exception):
    """replace()/delete(): the object is not the version the caller saw."""


class NotAtomicWarning(UserWarning):
    """The store has no conditional writes: two racing machines could both take the lock."""


@dataclasses.dataclass(frozen=True)
class Stored:
    data: bytes
    version: Hashable  # ETag, generation, (inode, mtime); compared for equality only
    modified: float | None = None  # the store's modification time, for clock skew
    size: int | None = None  # the whole object's size when more than `limit` was there (data is cut)
    odd: str | None = None  # not a regular file: "a directory", "a symbolic link to '...'"


class Store(abc.ABC):
    atomic = True  # False: create/replace are write-wait-verify, not conditional
    parallel_io = True  # many requests in flight pay off (network stores); not on local disk
    # After winning a Deep Lake dataset's lock, how long to wait before confirming it is
    # still ours: Deep Lake's verify interval (LOCK_VERIFY_INTERVAL, 0.5 s on object
    # stores) plus a margin for the gap between its read and its write.
    deeplake_settle = 1.0
    lists_trees = False  # True where list_tree() is implemented
    notifies = False  # True where watch() wakes waiters at a release (local disk, memory)

    @abc.abstractmethod
    def url(self, path: str) -> str:
        """How to show `path` to a user."""

    def join(self, base: str, *parts: str) -> str:
        return "/".join([base.rstrip("/"), *parts])

    @abc.abstractmethod
    def is_dir(self, path: str) -> bool:
        """Does the dataset (directory or prefix) exist?"""

    def missing_reason(self, path: str) -> str:
        """Why `path` is no dataset, for the error (is_dir said no)."""
        return "no such dataset or directory. Check the path; dlock never creates a dataset."

    def prepare_parent(self, path: str) -> None:
        """Make the directory a lock file goes in, where the store has directories."""

    @abc.abstractmethod
    def list_dirs(self, path: str) -> list[str]:
        """Names of the subdirectories of `path` (empty when there is none)."""

    @abc.abstractmethod
    def scan(self, path: str) -> tuple[list[str], list[str]]:
        """(subdirectory names, file names) directly under `path`, for walking a tree; never
        from a cache, since another client may have just written a lock."""

    def list_tree(self, path: str, budget: int) -> list[str] | None:
        """Every file under `path`, as paths relative to it, or None once more than `budget`
        keys turn up. Object stores list a whole prefix in pages of 1,000 keys, far cheaper
        than one request per directory for trees of small datasets."""
        return None

    # -- lock files: conditional ------------------------------------------------------

    @abc.abstractmethod
    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        """The object and its version, or None when absent. At most `limit` bytes are
        fetched: a larger object comes back with `size` set and its data cut."""

    @abc.abstractmethod
    def create(self, path: str, data: bytes) -> Stored:
        """Write only if absent, atomically; raises AlreadyExists."""

    @abc.abstractmethod
    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        """Overwrite only if the object is still `expected`; raises Conflict."""

    @abc.abstractmethod
    def delete(self, path: str, expected: Stored) -> None:
        """Delete only if the object is still `expected`; raises Conflict."""

    def check_unchanged(self, path: str, expected: Stored) -> None:
        """Conflict unless `path` still holds `expected`: for stores that compare and then
        swap under a lock of their own instead of asking the server for a condition."""
        current = self.read(path)
        if current is None or not self.unchanged(current, expected):
            raise Conflict(path)

    def unchanged(self, current: Stored, expected: Stored) -> bool:
        return current.version == expected.version and current.data == expected.data

    def watch(self, path: str) -> Watcher:
        """What wakes a waiter when the lock file at `path` may have been freed (see
        dlock.stores.notify); only called where `notifies`. Elsewhere waiters poll."""
        from dlock.stores.notify import Sleeper

        return Sleeper()

    # -- data files (dlock.writer): plain, unconditional, each write atomic -------------

    @abc.abstractmethod
    def write_data(self, path: str, data: bytes) -> None:
        """Replace a data file whole: a reader sees the old file or the new one, never half."""

    @abc.abstractmethod
    def read_data(self, path: str) -> bytes | None:
        """A data file's bytes, or None when there is none."""

    @abc.abstractmethod
    def delete_data(self, path: str) -> bool:
        """Delete a data file; False when there was none."""

    @abc.abstractmethod
    def data_exists(self, path: str) -> bool:
        """Is there a data file at `path`?"""
