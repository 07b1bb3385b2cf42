"""Conditional primitives of a store that keeps lock files (DESIGN 3.3).

A Store knows nothing of locks: it reads an object with an opaque version (ETag,
generation, inode), creates one only if absent, and replaces or deletes one only if
it is still the version the caller saw. dlock.backends.lockfile builds the lock on
these, once for every store.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Hashable


# Bounds on what dlock reads from a store: a lock file is 18 bytes (Deep Lake) or a few
# hundred (dlock); Deep Lake's version_control_info.json grows with its commits.
MAX_LOCK_BYTES = 64 * 1024
MAX_INFO_BYTES = 32 * 1024 * 1024


class AlreadyExists(Exception):
    """create(): the object is there."""


class Conflict(Exception):
    """replace()/delete(): the object is not the version the caller saw."""


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

    def scan(self, path: str) -> tuple[list[str], list[str]]:
        """(subdirectory names, file names) directly under `path`, for walking a tree.

        The default serves fsspec-based stores through `self.fs`; listings are never
        cached, since another client may have just written a lock.
        """
        fs = getattr(self, "fs")
        fs.invalidate_cache(path)
        dirs: list[str] = []
        files: list[str] = []
        for entry in fs.ls(path, detail=True):
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            (dirs if entry["type"] == "directory" else files).append(name)
        return dirs, files

    lists_trees = False  # True where list_tree() is implemented

    def list_tree(self, path: str, budget: int) -> list[str] | None:
        """Every file under `path`, as paths relative to it, or None once more than `budget`
        keys turn up. Object stores list a whole prefix in pages of 1,000 keys, far cheaper
        than one request per directory for trees of small datasets."""
        return None

    @abc.abstractmethod
    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        """The object and its version, or None when absent. At most `limit` bytes are
        fetched: a larger object comes back with `size` set and its data cut."""

    # -- data files (dlock.writer): plain, unconditional, each write atomic -------------

    def write_data(self, path: str, data: bytes) -> None:
        """Replace a data file whole: one PUT on object stores (never a visible partial object)."""
        getattr(self, "fs").pipe_file(path, data)

    def read_data(self, path: str) -> bytes | None:
        try:
            return bytes(getattr(self, "fs").cat_file(path))
        except FileNotFoundError:
            return None

    def delete_data(self, path: str) -> bool:
        """Delete a data file; False when there was none."""
        try:
            getattr(self, "fs").rm_file(path)
        except FileNotFoundError:
            return False
        return True

    def data_exists(self, path: str) -> bool:
        fs = getattr(self, "fs")
        fs.invalidate_cache(path)
        return bool(fs.exists(path))

    @abc.abstractmethod
    def create(self, path: str, data: bytes) -> Stored:
        """Write only if absent, atomically; raises AlreadyExists."""

    @abc.abstractmethod
    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        """Overwrite only if the object is still `expected`; raises Conflict."""

    @abc.abstractmethod
    def delete(self, path: str, expected: Stored) -> None:
        """Delete only if the object is still `expected`; raises Conflict."""
