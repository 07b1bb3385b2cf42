"""memory://: the in-process store of fsspec's MemoryFileSystem, for tests and the Python API.

MemoryFileSystem itself is not atomic, so one process-wide lock makes every
conditional operation a compare-and-swap between threads.
"""

from __future__ import annotations

import threading

from fsspec.implementations.memory import MemoryFileSystem

from dlock.backends.base import Backend, Options
from dlock.backends.lockfile import LockFileBackend
from dlock.backends.store import MAX_LOCK_BYTES, AlreadyExists, Conflict, Store, Stored

_GUARD = threading.RLock()


class MemoryStore(Store):
    deeplake_settle = 0.0  # no Deep Lake process writes into this process's memory
    def __init__(self) -> None:
        self.fs = MemoryFileSystem()

    def url(self, path: str) -> str:
        return "memory://" + path.lstrip("/")

    def is_dir(self, path: str) -> bool:
        with _GUARD:
            return self.fs.isdir(path)

    def list_dirs(self, path: str) -> list[str]:
        with _GUARD:
            if not self.fs.isdir(path):
                return []
            return [entry["name"].rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(path) if entry["type"] == "directory"]

    lists_trees = True

    def list_tree(self, path: str, budget: int) -> list[str] | None:
        with _GUARD:
            prefix = self.fs._strip_protocol(path).rstrip("/") + "/"
            keys = [key[len(prefix) :] for key in self.fs.store if key.startswith(prefix)]
        return keys if len(keys) <= budget else None

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        with _GUARD:
            entry = self.fs.store.get(self.fs._strip_protocol(path))
            if entry is None:
                return None
            data = bytes(entry.getvalue())
            # Each write stores a new MemoryFile, so the object itself is the version.
            return Stored(data[:limit], id(entry), entry.modified.timestamp(), size=len(data) if len(data) > limit else None)

    def _write(self, path: str, data: bytes) -> Stored:
        self.fs.pipe_file(path, data)
        stored = self.read(path)
        assert stored is not None
        return stored

    def create(self, path: str, data: bytes) -> Stored:
        with _GUARD:
            if self.read(path) is not None:
                raise AlreadyExists(path)
            return self._write(path, data)

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        with _GUARD:
            self._check(path, expected)
            return self._write(path, data)

    def delete(self, path: str, expected: Stored) -> None:
        with _GUARD:
            self._check(path, expected)
            self.fs.rm_file(path)

    def write_data(self, path: str, data: bytes) -> None:
        with _GUARD:
            self.fs.pipe_file(path, data)

    def read_data(self, path: str) -> bytes | None:
        with _GUARD:
            return super().read_data(path)

    def delete_data(self, path: str) -> bool:
        with _GUARD:
            return super().delete_data(path)

    def data_exists(self, path: str) -> bool:
        with _GUARD:
            return super().data_exists(path)

    def _check(self, path: str, expected: Stored) -> None:
        current = self.read(path)
        if current is None or current.version != expected.version or current.data != expected.data:
            raise Conflict(path)


def open_backend(target: str, location: str, options: Options) -> Backend:
    path = "/" + location[len("memory://") :].strip("/")
    return LockFileBackend(MemoryStore(), path, target, options)


