"""memory://: the in-process store of fsspec's MemoryFileSystem, for tests and the Python API.

MemoryFileSystem itself is not atomic: a create is one atomic dict.setdefault, and one
process-wide lock makes replace and delete a compare-and-swap between threads.
"""

from __future__ import annotations

import threading
from typing import Mapping

from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

from dlock.stores import notify
from dlock.stores.base import MAX_LOCK_BYTES, AlreadyExists, Store, Stored
from dlock.stores.fsspec import FsspecStore

# MemoryFileSystem keeps one store per process, so one guard serves every MemoryStore.
_GUARD = threading.RLock()


class MemoryStore(FsspecStore):
    notifies = True
    deeplake_settle = 0.0  # no Deep Lake process writes into this process's memory
    lists_trees = True

    fs: MemoryFileSystem

    def __init__(self) -> None:
        super().__init__(MemoryFileSystem(), "memory")

    def url(self, path: str) -> str:
        return "memory://" + path.lstrip("/")

    def is_dir(self, path: str) -> bool:
        with _GUARD:
            return bool(self.fs.isdir(path))

    def list_dirs(self, path: str) -> list[str]:
        with _GUARD:
            if not self.fs.isdir(path):
                return []
            return [entry["name"].rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(path) if entry["type"] == "directory"]

    def scan(self, path: str) -> tuple[list[str], list[str]]:
        with _GUARD:
            return super().scan(path)

    def list_tree(self, path: str, budget: int) -> list[str] | None:
        with _GUARD:
            prefix = self._key(path).rstrip("/") + "/"
            keys = [key[len(prefix) :] for key in tuple(self.fs.store) if key.startswith(prefix)]
        return keys if len(keys) <= budget else None

    # Each write stores a new MemoryFile and never writes into one again, so a dict lookup
    # reads a consistent version without the guard, and the object itself is the version.
    # The guard covers only compare-and-swap, deletion and listing, a few bytecodes each:
    # a thread pre-empted inside a longer one (fsspec's open and write) would queue every
    # other thread behind it, each queueing a hand-over of the GIL.

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        entry = self.fs.store.get(self._key(path))
        return None if entry is None else _stored(entry, limit)

    def create(self, path: str, data: bytes) -> Stored:
        key = self._key(path)
        entry = self._new(key, data)
        if self.fs.store.setdefault(key, entry) is not entry:  # one atomic step: no guard
            raise AlreadyExists(path)
        return _stored(entry)

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        key = self._key(path)
        entry = self._new(key, data)
        with _GUARD:
            self.check_unchanged(path, expected)
            self.fs.store[key] = entry
        return _stored(entry)

    def delete(self, path: str, expected: Stored) -> None:
        key = self._key(path)
        with _GUARD:
            self.check_unchanged(path, expected)
            del self.fs.store[key]
        notify.BOARD.released(key)

    def _new(self, key: str, data: bytes) -> MemoryFile:
        if key in self.fs.pseudo_dirs:
            raise IsADirectoryError(key)
        return MemoryFile(self.fs, key, data)

    def watch(self, path: str) -> notify.Watcher:
        """Only threads of this process share its memory: they wake at each other's release."""
        key = self._key(path)
        return notify.BOARD.watcher(key, lambda: key in self.fs.store)

    def _key(self, path: str) -> str:
        key: str = self.fs._strip_protocol(path)
        return key

    # -- data files: a write is one dict assignment; deletion under the guard ------------

    def delete_data(self, path: str) -> bool:
        with _GUARD:
            return super().delete_data(path)


def _stored(entry: MemoryFile, limit: int = MAX_LOCK_BYTES) -> Stored:
    data = bytes(entry.getbuffer())
    return Stored(data[:limit], id(entry), entry.modified.timestamp(), size=len(data) if len(data) > limit else None)


def open_store(location: str, storage_options: Mapping[str, str]) -> tuple[Store, str]:
    """memory://ds: the path /ds in this process's memory (storage options do not apply)."""
    return MemoryStore(), "/" + location[len("memory://") :].strip("/")
