"""The minimal write API: write a dataset's files only while holding its lock.

    with dlock.writer("s3://bucket/ds", timeout=60) as w:
        w.write_bytes("chunks/0001", data)
        w.write_text("meta.json", text)

Each write is atomic on its store (temp file + rename on local disk, one PUT on object
stores), and each write or delete first confirms that the lock is still ours (one read
of the lock file; ZooKeeper's node watch already knows): a writer whose lock was forced
away, taken over or expired gets LockLost and writes nothing more, at any ttl.
"""

from __future__ import annotations

import contextlib
import posixpath
from typing import Iterator, Mapping

from dlock.api import DEFAULT_TTL, Target, TargetOptions, lock, options, target_text
from dlock.backends.layout import LOCK_NAME, SHORT_LOCKS
from dlock.backends.lockfile import LockFileBackend
from dlock.stores.base import Store
from dlock.errors import UsageError
from dlock.lease import Lease
from dlock.targets import open_backend

PROTECTED = frozenset({LOCK_NAME, *SHORT_LOCKS})


class Writer:
    """Reads and writes files inside one dataset while its lock is held (see dlock.writer)."""

    def __init__(self, store: Store, dataset: str, lease: Lease) -> None:
        self._store = store
        self._dataset = dataset
        self.lease = lease

    @property
    def dataset(self) -> str:
        return self._store.url(self._dataset)

    def write_bytes(self, path: str, data: bytes | bytearray | memoryview) -> None:
        """Replace the file at `path` (relative to the dataset) with `data`, atomically."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write_bytes takes bytes, not {type(data).__name__} (write_text takes str)")
        target = self._resolve(path)
        self.lease.confirm()
        self._store.write_data(target, bytes(data))

    def write_text(self, path: str, text: str, encoding: str = "utf-8") -> None:
        if not isinstance(text, str):
            raise TypeError(f"write_text takes str, not {type(text).__name__} (write_bytes takes bytes)")
        self.write_bytes(path, text.encode(encoding))

    def read_bytes(self, path: str) -> bytes:
        """The file's bytes; FileNotFoundError when there is none."""
        target = self._resolve(path)
        self.lease.raise_if_lost()  # a read asks no request
        data = self._store.read_data(target)
        if data is None:
            raise FileNotFoundError(f"{self._store.url(target)}: no such file")
        return data

    def exists(self, path: str) -> bool:
        target = self._resolve(path)
        self.lease.raise_if_lost()  # a read asks no request
        return self._store.data_exists(target)

    def delete(self, path: str) -> bool:
        """Delete the file; False when there was none."""
        target = self._resolve(path)
        self.lease.confirm()
        return self._store.delete_data(target)

    def _resolve(self, path: str) -> str:
        """A path inside the dataset, never the lock files, never outside."""
        if not isinstance(path, str) or not path.strip():
            raise UsageError(f"{self.dataset}: an empty path names no file.")
        if path.startswith("/") or "\\" in path or "://" in path:
            raise UsageError(f"{self.dataset}: {path!r} is not a relative path inside the dataset.")
        parts = path.split("/")
        if any(part in ("..", ".") for part in parts) or posixpath.normpath(path) != path:
            raise UsageError(f"{self.dataset}: {path!r} escapes or is not normalised; write plain relative paths.")
        name = parts[-1]
        if name in PROTECTED or (name.startswith(".") and name.endswith(".tmp")) or name.startswith(".dlock-probe"):
            raise UsageError(f"{self.dataset}: {path!r} is a lock file or dlock's own; the writer will not touch it.")
        return self._store.join(self._dataset, *parts)


@contextlib.contextmanager
def writer(
    dataset: Target,
    *,
    timeout: float = -1,
    ttl: float = DEFAULT_TTL,
    note: str = "",
    lock_target: str | None = None,
    storage_options: Mapping[str, str] | None = None,
    branch: str = "main",
    commit: str | None = None,
    zk_timeout: float = 10.0,
    zk_auth: str | None = None,
) -> Iterator[Writer]:
    """Hold the lock of `dataset` and yield a Writer for its files.

    `lock_target` takes the lock elsewhere, e.g. `zk://zk1:2181/locks/ds` for a team
    that locks through ZooKeeper; the files are still written through the dataset's
    own filesystem. The lock is refreshed in the background and released on exit, also
    when the block raises.
    """
    dataset = target_text(dataset)
    opts: TargetOptions = {"storage_options": storage_options, "branch": branch, "commit": commit,
                           "zk_timeout": zk_timeout, "zk_auth": zk_auth}
    data_backend = open_backend(dataset, options(**opts))
    if not isinstance(data_backend, LockFileBackend):
        raise UsageError(f"{dataset}: the writer writes dataset files; give the dataset's path or URL "
                         "(and lock_target= for a ZooKeeper lock).")
    data_backend.ensure_exists()  # a typo creates nothing
    with lock(lock_target or dataset, timeout=timeout, ttl=ttl, note=note, **opts) as lease:
        yield Writer(data_backend.store, data_backend.dataset, lease)
