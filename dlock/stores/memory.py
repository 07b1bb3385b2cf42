"""memory://: the in-process store of fsspec's MemoryFileSystem, for tests and the Python API.

MemoryFileSystem itself is not atomic, so one process-wide lock makes every
conditional operation a compare-and-swap between threads.
"""

from __future__ import annotations

import threading
from typing import Mapping

from fsspec.implementations.memory import MemoryFileSystem

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
            keys = [key[len(prefix) :] for key in self.fs.store if key.startswith(prefix)]
        return keys if len(keys) <= budget else None

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        with _GUARD:
            entry = self.fs.store.get(self._key(path))
            if entry is None:
                return None
            data = bytes(entry.getvalue())
            # Each write stores a new MemoryFile, so the object itself is the version.
            return Stored(data[:limit], id(entry), entry.modified.timestamp(), size=len(data) if len(data) > limit else None)

    def create(self, path: str, data: bytes) -> Stored:
        with _GUARD:
            if self.read(path) is not None:
                raise AlreadyExists(path)
            return self._write(path, data)

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        with _GUARD:
            self.check_unchanged(path, expected)
            return self._write(path, data)

    def delete(self, path: str, expected: Stored) -> None:
        with _GUARD:
            self.check_unchanged(path, expected)
            self.fs.rm_file(path)
        notify.BOARD.released(self._key(path))

    def watch(self, path: str) -> notify.Watcher:
        """Only threads of this process share its memory: they wake at each other's release."""
        key = self._key(path)
        return notify.BOARD.watcher(key, lambda: key in self.fs.store)

    def _write(self, path: str, data: bytes) -> Stored:
        self.fs.pipe_file(path, data)
        stored = self.read(path)
        assert stored is not None
        return stored

    def _key(self, path: str) -> str:
        key: str = self.fs._strip_protocol(path)
        return key

    # -- data files, under the same guard ----------------------------------------------

    def write_data(self, path: str, data: bytes) -> None:
        with _GUARD:
            super().write_data(path, data)

    def read_data(self, path: str) -> bytes | None:
        with _GUARD:
            return super().read_data(path)

    def delete_data(self, path: str) -> bool:
        with _GUARD:
            return super().delete_data(path)

    def data_exists(self, path: str) -> bool:
        with _GUARD:
            return super().data_exists(path)


def open_store(location: str, storage_options: Mapping[str, str]) -> tuple[Store, str]:
    """memory://ds: the path /ds in this process's memory (storage options do not apply)."""
    return MemoryStore(), "/" + location[len("memory://") :].strip("/")
