"""Lock files on local disk: link() for create, a directory flock around compare-and-swap.

open(p, "xb") is O_EXCL but shows an empty file while it is being written, and
fsspec's create mode is check-then-write, so create writes a complete temp file and
link()s it into place, which fails if the name exists. Replace and delete re-read
the file under an flock of its directory, so two dlock processes taking over the
same stale lock cannot both win (the kernel drops the flock if a process dies).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from stat import S_ISDIR, S_ISFIFO, S_ISLNK, S_ISREG, S_ISSOCK
from typing import Iterator, Mapping

from dlock.errors import BackendError, Refused, UsageError
from dlock.identity import random_bytes
from dlock.stores import notify
from dlock.stores.base import MAX_LOCK_BYTES, AlreadyExists, Conflict, Store, Stored


class LocalStore(Store):
    parallel_io = False  # measured: threads only add GIL contention to cached stat calls
    notifies = True
    deeplake_settle = 0.1  # Deep Lake verifies after 0.01 s on local disk; 0.09 s of margin

    def url(self, path: str) -> str:
        return path

    def join(self, base: str, *parts: str) -> str:
        return os.path.join(base, *parts)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def missing_reason(self, path: str) -> str:
        if os.path.lexists(path):
            return f"{path} is a file, not a dataset directory. Give the directory that holds the dataset."
        return super().missing_reason(path)

    def list_dirs(self, path: str) -> list[str]:
        try:
            with os.scandir(path) as entries:
                return [entry.name for entry in entries if entry.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise _backend_error(path, exc) from exc

    def scan(self, path: str) -> tuple[list[str], list[str]]:
        dirs: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    (dirs if entry.is_dir() else files).append(entry.name)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            raise _backend_error(path, exc) from exc
        return dirs, files

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        # O_NOFOLLOW: a lock file that is a link is reported, never followed; O_NONBLOCK:
        # a named pipe in its place must not hang the reader.
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EOPNOTSUPP):
                return _odd_entry(path)
            raise _backend_error(path, exc) from exc
        try:
            stat = os.fstat(fd)
            if not S_ISREG(stat.st_mode):
                return _odd_entry(path)
            data = _read_at_most(fd, limit)
        except OSError as exc:
            raise _backend_error(path, exc) from exc
        finally:
            os.close(fd)
        version = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        return Stored(data, version, stat.st_mtime, size=stat.st_size if stat.st_size > len(data) else None)

    def prepare_parent(self, path: str) -> None:
        """A head commit's versions/<id>/ directory may not exist yet; Deep Lake makes it too
        (only ever for an id checked against version_control_info.json)."""
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as exc:
            raise _backend_error(path, exc) from exc

    def create(self, path: str, data: bytes) -> Stored:
        if os.path.lexists(path):  # a busy lock's contenders need no temp file; link() decides
            raise AlreadyExists(path)
        # fsync after the link, and only by the winner: contenders woken together by a
        # release fsyncing each their own temp file made the disk the bottleneck. Other
        # processes see the complete bytes at once either way; a machine crash in between
        # can leave the file empty, which dlock reports as corrupt (release --force).
        temp, fd = self._write_temp(path, data, sync=False)
        try:
            os.link(temp, path)
            os.fsync(fd)
        except FileExistsError:
            raise AlreadyExists(path) from None
        except OSError as exc:
            raise _backend_error(path, exc) from exc
        finally:
            os.close(fd)
            _unlink_quietly(temp)
        stored = self.read(path)
        assert stored is not None
        return stored

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        # The new file is written (and synced) before the compare, so that the compare and
        # the rename lie microseconds apart: Deep Lake writes in place without our flock,
        # and its write must not fall between them unseen for longer than its 10 ms verify.
        temp, fd = self._write_temp(path, data)
        os.close(fd)
        try:
            with self._guard(path):
                self.check_unchanged(path, expected)
                self._rename(temp, path)
                stored = self.read(path)
        finally:
            _unlink_quietly(temp)
        assert stored is not None
        return stored

    def delete(self, path: str, expected: Stored) -> None:
        with self._guard(path):
            self.check_unchanged(path, expected)
            try:
                if expected.odd == ODD_DIRECTORY:
                    os.rmdir(path)
                else:
                    os.unlink(path)  # a link itself, never what it points to
            except FileNotFoundError:
                raise Conflict(path) from None
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise Refused(
                        f"{path} is a directory with files in it, not a lock file; dlock deletes no data. "
                        "Look inside, then remove it by hand."
                    ) from None
                raise _backend_error(path, exc) from exc
        notify.BOARD.released(os.path.abspath(path))

    def watch(self, path: str) -> notify.Watcher:
        """inotify where there is one (other processes' releases too), else this process's releases."""
        return notify.watch_file(path)

    def write_data(self, path: str, data: bytes) -> None:
        """Temp file, fsync, rename over: a reader sees the old file or the new one, never half."""
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as exc:
            raise _backend_error(path, exc) from exc
        self._rename_into_place(path, data)

    def read_data(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _backend_error(path, exc) from exc

    def delete_data(self, path: str) -> bool:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _backend_error(path, exc) from exc
        return True

    def data_exists(self, path: str) -> bool:
        return os.path.exists(path)

    @contextlib.contextmanager
    def _guard(self, path: str) -> Iterator[None]:
        try:
            fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise _backend_error(path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def _rename_into_place(self, path: str, data: bytes) -> None:
        temp, fd = self._write_temp(path, data)
        os.close(fd)
        try:
            self._rename(temp, path)
        finally:
            _unlink_quietly(temp)

    def _rename(self, temp: str, path: str) -> None:
        try:
            os.replace(temp, path)
        except OSError as exc:
            raise _backend_error(path, exc) from exc

    def _write_temp(self, path: str, data: bytes, sync: bool = True) -> tuple[str, int]:
        """(the temp file, its open descriptor: the caller closes it), written and, unless
        told otherwise, fsynced."""
        directory, name = os.path.split(path)
        temp = os.path.join(directory, f".{name}.{random_bytes(6).hex()}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise _backend_error(path, exc) from exc
        try:
            os.write(fd, data)
            if sync:
                os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            _unlink_quietly(temp)
            raise _backend_error(path, exc) from exc
        return temp, fd


ODD_DIRECTORY = "a directory"


def _odd_entry(path: str) -> Stored | None:
    """Something other than a regular file where a lock file belongs: described, never read."""
    try:
        stat = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _backend_error(path, exc) from exc
    if S_ISLNK(stat.st_mode):
        try:
            what = f"a symbolic link to {os.readlink(path)!r}"
        except OSError:
            what = "a symbolic link"
    elif S_ISDIR(stat.st_mode):
        what = ODD_DIRECTORY
    elif S_ISFIFO(stat.st_mode):
        what = "a named pipe"
    elif S_ISSOCK(stat.st_mode):
        what = "a socket"
    else:
        what = "a device file"
    version = ("odd", stat.st_dev, stat.st_ino, stat.st_mtime_ns)
    return Stored(b"", version, stat.st_mtime, odd=what)


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, left = [], limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _backend_error(path: str, exc: OSError) -> BackendError:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return BackendError(f"{path}: permission denied ({exc.strerror}). Check who owns the dataset directory.")
    if exc.errno == errno.EROFS:
        return BackendError(f"{path}: the file system is read-only, so no lock can be written there.")
    return BackendError(f"{path}: {exc.strerror or exc}.")


def local_path(location: str) -> str:
    """file:///data/ds and ./ds alike, as an absolute path."""
    if location[:7].lower() == "file://":
        path = location[len("file://") :]
        if not path:
            raise UsageError(f"{location!r} names no path; write file:///absolute/path or a plain path such as ./ds.")
        if not path.startswith("/"):  # file://host/path: dlock reads only this machine's disks
            raise UsageError(f"{location!r} names a host; write file:///{path} for a local path.")
        location = path
    return str(Path(location).expanduser().absolute())


def open_store(location: str, storage_options: Mapping[str, str]) -> tuple[Store, str]:
    """Local disk takes no storage options: the path is all there is."""
    return LocalStore(), local_path(location)
