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


class AlreadyExists(Exception):
    """create(): the object is there."""


class Conflict(Exception):
    """replace()/delete(): the object is not the version the caller saw."""


@dataclasses.dataclass(frozen=True)
class Stored:
    data: bytes
    version: Hashable  # ETag, generation, (inode, mtime); compared for equality only
    modified: float | None = None  # the store's modification time, for clock skew


class Store(abc.ABC):
    atomic = True  # False: create/replace are write-wait-verify, not conditional

    @abc.abstractmethod
    def url(self, path: str) -> str:
        """How to show `path` to a user."""

    def join(self, base: str, *parts: str) -> str:
        return "/".join([base.rstrip("/"), *parts])

    @abc.abstractmethod
    def is_dir(self, path: str) -> bool:
        """Does the dataset (directory or prefix) exist?"""

    @abc.abstractmethod
    def list_dirs(self, path: str) -> list[str]:
        """Names of the subdirectories of `path` (empty when there is none)."""

    @abc.abstractmethod
    def read(self, path: str) -> Stored | None:
        """The object and its version, or None when absent."""

    @abc.abstractmethod
    def create(self, path: str, data: bytes) -> Stored:
        """Write only if absent, atomically; raises AlreadyExists."""

    @abc.abstractmethod
    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        """Overwrite only if the object is still `expected`; raises Conflict."""

    @abc.abstractmethod
    def delete(self, path: str, expected: Stored) -> None:
        """Delete only if the object is still `expected`; raises Conflict."""
