"""Any fsspec filesystem, and what the S3 and GCS stores share with it: the plumbing of
reading and listing through fsspec, `-o KEY=VALUE` storage options, and one translation
of a store's own errors into dlock's.

A filesystem without conditional writes gets Deep Lake's own protocol for its lock
files (write, wait, read back, compare), which is not atomic and says so. fsspec's
`pipe_file(mode="create")` is no better: it checks `exists()` and then writes.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from datetime import datetime
from typing import Iterator, Mapping, Union

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from dlock.errors import BackendError, DLockError, NotFound, UsageError
from dlock.stores.base import MAX_LOCK_BYTES, AlreadyExists, Conflict, NotAtomicWarning, Store, Stored

VERIFY_DELAY = 0.5  # Deep Lake's verify interval on object stores
UNREACHABLE = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ClientConnectorError", "ServerDisconnectedError", "ServerTimeoutError", "TimeoutError",
    "ConnectionRefusedError", "ConnectionError", "ClientOSError", "FSTimeoutError",
    "ServiceRequestError", "ServiceResponseError",  # the Azure SDK's
})
BAD_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "AuthFailure")

# What `-o KEY=VALUE` becomes: JSON's values, as a filesystem's keyword arguments take them.
OptionValue = Union[str, bool, int, float, None, list["OptionValue"], dict[str, "OptionValue"]]


def parse_storage_options(options: Mapping[str, str]) -> dict[str, OptionValue]:
    """`-o KEY=VALUE` values arrive as text: true/false, numbers and JSON become values."""
    return {key: _option_value(text) for key, text in options.items()}


def _option_value(text: str) -> OptionValue:
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    try:
        value: OptionValue = json.loads(text) if text[:1] in "[{" or text.replace(".", "", 1).isdigit() else text
    except ValueError:
        return text
    return value


def bucket_path(location: str) -> tuple[str, str]:
    """(scheme, bucket/path) of an object store URL such as s3://bucket/path/to/dataset."""
    scheme, _, rest = location.partition("://")
    path = rest.strip("/")
    if not path or path.startswith("/"):
        raise UsageError(f"{location!r} names no bucket; use {scheme}://bucket/path/to/dataset.")
    return scheme.lower(), path


def key_prefix(key: str) -> str:
    """The listing prefix of everything under `key` in a bucket (the whole bucket for "")."""
    return key.rstrip("/") + "/" if key else ""


class FsspecStore(Store):
    """Reading, listing and data files through an fsspec filesystem, with the filesystem's
    errors translated at this edge. Subclasses say how lock files are written."""

    endpoint_hint = "the URL and -o storage options"
    credentials_hint = "the filesystem's credentials, given with -o KEY=VALUE"

    def __init__(self, fs: AbstractFileSystem, scheme: str) -> None:
        self.fs = fs
        self.scheme = scheme

    def url(self, path: str) -> str:
        return f"{self.scheme}://{path}"

    def split(self, path: str) -> tuple[str, str]:
        """(bucket, key) of an object store path."""
        bucket, _, key = path.partition("/")
        return bucket, key

    def no_bucket(self, path: str) -> NotFound:
        return NotFound(f"{self.url(path)}: no such bucket {self.split(path)[0]!r}.")

    def is_dir(self, path: str) -> bool:
        with self.errors(path):
            self.fs.invalidate_cache(path)
            return bool(self.fs.isdir(path))

    def list_dirs(self, path: str) -> list[str]:
        return self.scan(path)[0]

    def scan(self, path: str) -> tuple[list[str], list[str]]:
        dirs: list[str] = []
        files: list[str] = []
        with self.errors(path):
            self.fs.invalidate_cache(path)
            try:
                entries = self.fs.ls(path, detail=True)
            except FileNotFoundError:
                return [], []
        for entry in entries:
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            (dirs if entry["type"] == "directory" else files).append(name)
        return dirs, files

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        with self.errors(path):
            try:
                info = self.fs.info(path)
                size = info.get("size")
                too_big = isinstance(size, int) and size > limit
                data = b"" if too_big else bytes(self.fs.cat_file(path))
            except FileNotFoundError:
                return None
        if info.get("type") == "directory":
            return Stored(b"", ("directory", path), mtime(info), odd="a directory")
        version = info.get("ETag") or info.get("generation") or (info.get("size"), str(info.get("mtime")), data)
        return Stored(data, version, mtime(info), size=size if too_big else None)

    # -- data files: one PUT each on object stores, never a visible partial object -----

    def write_data(self, path: str, data: bytes) -> None:
        with self.errors(path):
            self.fs.pipe_file(path, data)

    def read_data(self, path: str) -> bytes | None:
        with self.errors(path):
            try:
                return bytes(self.fs.cat_file(path))
            except FileNotFoundError:
                return None

    def delete_data(self, path: str) -> bool:
        with self.errors(path):
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                return False
        return True

    def data_exists(self, path: str) -> bool:
        with self.errors(path):
            self.fs.invalidate_cache(path)
            return bool(self.fs.exists(path))

    # -- the store's own errors, translated once ---------------------------------------

    @contextlib.contextmanager
    def errors(self, path: str) -> Iterator[None]:
        """Translate the store's own errors, once, at its edge."""
        try:
            yield
        except (AlreadyExists, Conflict, DLockError, FileNotFoundError):
            raise
        except Exception as exc:
            raise self.translate(path, exc) from exc

    def translate(self, path: str, exc: BaseException) -> DLockError:
        url = self.url(path)
        code = error_code(exc)
        names = {type(exc).__name__, *(type(e).__name__ for e in _causes(exc))}
        if code in BAD_CREDENTIALS:
            return BackendError(f"{url}: the store rejected the credentials ({code}). Check {self.credentials_hint}.")
        if isinstance(exc, PermissionError) or code in ("AccessDenied", "403", "AllAccessDisabled") or "Forbidden" in str(exc)[:20]:
            return BackendError(f"{url}: access denied. Check the credentials and that they may read and write this prefix.")
        if "NoCredentialsError" in names or "DefaultCredentialsError" in names:
            return BackendError(f"{url}: no credentials found. Set {self.credentials_hint}.")
        if names & UNREACHABLE or isinstance(exc, (TimeoutError, ConnectionError)):
            return BackendError(f"{url}: cannot reach the store ({_short(exc)}). Check {self.endpoint_hint} and the network.")
        if code in ("SlowDown", "503", "Throttling", "TooManyRequests", "429"):
            return BackendError(f"{url}: the store is throttling requests even after retries; try again later.")
        return BackendError(f"{url}: {_short(exc)}.")


class VerifyingStore(FsspecStore):
    """Lock files by Deep Lake's protocol (write, wait VERIFY_DELAY, read back, compare) on a
    store that has no conditional writes: not atomic, reported as such. Any other
    FsspecStore that turns out to ignore its conditions takes this class's writes first in
    its bases (see dlock.stores.s3.VerifyingS3Store)."""

    atomic = False

    def create(self, path: str, data: bytes) -> Stored:
        if self.read(path) is not None:
            raise AlreadyExists(path)
        return self._write_and_verify(path, data, AlreadyExists)

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        self.check_unchanged(path, expected)
        return self._write_and_verify(path, data, Conflict)

    def delete(self, path: str, expected: Stored) -> None:
        self.check_unchanged(path, expected)
        with self.errors(path):
            self.fs.rm_file(path)

    def unchanged(self, current: Stored, expected: Stored) -> bool:
        # As in Deep Lake's protocol, what counts is the bytes read back: nothing holds the
        # version still between this check and the unconditional write anyway.
        return current.data == expected.data

    def _write_and_verify(self, path: str, data: bytes, lost: type[Exception]) -> Stored:
        with self.errors(path):
            self.fs.pipe_file(path, data)
        time.sleep(VERIFY_DELAY)  # another writer that raced us has landed by now, or so Deep Lake hopes
        current = self.read(path)
        if current is None or current.data != data:
            raise lost(path)
        return current


def open_store(location: str, storage_options: Mapping[str, str]) -> tuple[Store, str]:
    """Any URL fsspec knows and dlock has no store of its own for: the visible fallback."""
    scheme = location.partition("://")[0].lower()
    try:
        fs, path = url_to_fs(location, **parse_storage_options(storage_options))
    except (ImportError, ValueError) as exc:
        raise UsageError(f"{location}: no filesystem for {scheme}:// ({exc}).") from None
    warnings.warn(
        f"{location}: {scheme}:// has no conditional writes, so dlock falls back to Deep Lake's "
        "write-wait-verify protocol; two machines racing could both take the lock.",
        NotAtomicWarning,
        stacklevel=2,
    )
    return VerifyingStore(fs, scheme), path


# -- reading a store's errors and times ------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen = 0
    cause = exc.__cause__ or exc.__context__
    while cause is not None and seen < 5:
        yield cause
        cause = cause.__cause__ or cause.__context__
        seen += 1


def error_code(exc: BaseException) -> str | None:
    """The S3 error code (botocore's response) behind `exc` or one of its causes."""
    for error in (exc, *_causes(exc)):
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def mtime(info: Mapping[str, object]) -> float | None:
    """A modification time as fsspec's info() or a JSON API gives it: number, datetime or ISO text."""
    value = info.get("mtime") or info.get("LastModified") or info.get("updated")
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    return None
