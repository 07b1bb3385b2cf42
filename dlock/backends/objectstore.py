"""Lock files on object stores (DESIGN 3.3).

S3: create with `If-None-Match: *`, replace and delete with `If-Match: <etag>`.
GCS: the same with `ifGenerationMatch` (0 for create). Any other fsspec store: Deep
Lake's own write, wait, read back and compare, which is not atomic and says so.

s3fs and gcsfs are imported only here, when a target needs them (~0.4 s and ~0.8 s).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

from dlock.backends.base import Backend, Options
from dlock.backends.lockfile import LockFileBackend
from dlock.backends.store import MAX_LOCK_BYTES, AlreadyExists, Conflict, Store, Stored
from dlock.errors import BackendError, DLockError, NotFound, UsageError

log = logging.getLogger("dlock")

VERIFY_DELAY = 0.5  # Deep Lake's verify interval on object stores
PROBE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dlock" / "conditional-writes.json"
PROBE_MAX_AGE = 86400.0
UNREACHABLE = (
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ClientConnectorError", "ServerDisconnectedError", "ServerTimeoutError", "TimeoutError",
    "ConnectionRefusedError", "ConnectionError", "ClientOSError", "FSTimeoutError",
)
BAD_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "AuthFailure")


class NotAtomicWarning(UserWarning):
    """The store has no conditional writes: two racing machines could both take the lock."""


# -- storage options ------------------------------------------------------------------------


def parse_storage_options(options: dict[str, str]) -> dict[str, Any]:
    """`-o KEY=VALUE` values arrive as text: true/false, numbers and JSON become values."""
    parsed: dict[str, Any] = {}
    for key, text in options.items():
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "on"):
            parsed[key] = True
        elif lowered in ("false", "no", "off"):
            parsed[key] = False
        elif lowered in ("none", "null"):
            parsed[key] = None
        else:
            try:
                parsed[key] = json.loads(text) if text[:1] in "[{" or text.replace(".", "", 1).isdigit() else text
            except ValueError:
                parsed[key] = text
    return parsed


# -- the generic store: any fsspec filesystem ------------------------------------------------------


class FsspecStore(Store):
    """Any fsspec filesystem. Without conditional writes, create and replace use Deep Lake's
    protocol (write, wait VERIFY_DELAY, read back, compare): not atomic, reported as such."""

    atomic = False
    endpoint_hint = "the URL and -o storage options"
    credentials_hint = "the filesystem's credentials, given with -o KEY=VALUE"

    def __init__(self, fs: Any, scheme: str, target: str) -> None:
        self.fs = fs
        self.scheme = scheme
        self.target = target

    def url(self, path: str) -> str:
        return f"{self.scheme}://{path}"

    def _split(self, path: str) -> tuple[str, str]:
        """bucket/key paths (S3, GCS)."""
        bucket, _, key = path.partition("/")
        return bucket, key

    def is_dir(self, path: str) -> bool:
        with self.errors(path):
            self.fs.invalidate_cache(path)
            return bool(self.fs.isdir(path))

    def list_dirs(self, path: str) -> list[str]:
        return self.scan(path)[0]

    def scan(self, path: str) -> tuple[list[str], list[str]]:
        with self.errors(path):
            try:
                return super().scan(path)
            except FileNotFoundError:
                return [], []

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        with self.errors(path):
            try:
                info = self.fs.info(path)
                size = info.get("size")
                too_big = isinstance(size, int) and size > limit
                data = b"" if too_big else self.fs.cat_file(path)
            except FileNotFoundError:
                return None
        if info.get("type") == "directory":
            return Stored(b"", ("directory", path), _mtime(info), odd="a directory")
        version = info.get("ETag") or info.get("generation") or (info.get("size"), str(info.get("mtime")), data)
        return Stored(data, version, _mtime(info), size=size if too_big else None)

    def create(self, path: str, data: bytes) -> Stored:
        if self.read(path) is not None:
            raise AlreadyExists(path)
        return self._write_and_verify(path, data, AlreadyExists)

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        self._check(path, expected)
        return self._write_and_verify(path, data, Conflict)

    def delete(self, path: str, expected: Stored) -> None:
        self._check(path, expected)
        with self.errors(path):
            self.fs.rm_file(path)

    def _check(self, path: str, expected: Stored) -> None:
        current = self.read(path)
        if current is None or current.data != expected.data:
            raise Conflict(path)

    def write_data(self, path: str, data: bytes) -> None:
        with self.errors(path):
            super().write_data(path, data)

    def read_data(self, path: str) -> bytes | None:
        with self.errors(path):
            return super().read_data(path)

    def delete_data(self, path: str) -> bool:
        with self.errors(path):
            return super().delete_data(path)

    def data_exists(self, path: str) -> bool:
        with self.errors(path):
            return super().data_exists(path)

    def _write_and_verify(self, path: str, data: bytes, lost: type[Exception]) -> Stored:
        with self.errors(path):
            self.fs.pipe_file(path, data)
        time.sleep(VERIFY_DELAY)  # another writer that raced us has landed by now, or so Deep Lake hopes
        current = self.read(path)
        if current is None or current.data != data:
            raise lost(path)
        return current

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
        code = _error_code(exc)
        names = {type(exc).__name__, *(type(e).__name__ for e in _causes(exc))}
        if code in BAD_CREDENTIALS:
            return BackendError(f"{url}: the store rejected the credentials ({code}). Check {self.credentials_hint}.")
        if isinstance(exc, PermissionError) or code in ("AccessDenied", "403", "AllAccessDisabled") or "Forbidden" in str(exc)[:20]:
            return BackendError(f"{url}: access denied. Check the credentials and that they may read and write this prefix.")
        if "NoCredentialsError" in names or "DefaultCredentialsError" in names:
            return BackendError(f"{url}: no credentials found. Set {self.credentials_hint}.")
        if names & set(UNREACHABLE) or isinstance(exc, (TimeoutError, ConnectionError)):
            return BackendError(f"{url}: cannot reach the store ({_short(exc)}). Check {self.endpoint_hint} and the network.")
        if code in ("SlowDown", "503", "Throttling", "TooManyRequests", "429"):
            return BackendError(f"{url}: the store is throttling requests even after retries; try again later.")
        return BackendError(f"{url}: {_short(exc)}.")


# -- S3 --------------------------------------------------------------------------------------------


class S3Store(FsspecStore):
    """s3fs plus the client's conditional PUT and DELETE; one GET reads data and ETag together."""

    atomic = True
    lists_trees = True
    endpoint_hint = "the endpoint (AWS_ENDPOINT_URL or -o endpoint_url=...)"
    credentials_hint = "AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or -o anon=true for a public bucket)"

    def __init__(self, fs: Any, target: str, endpoint: str | None) -> None:
        super().__init__(fs, "s3", target)
        self.endpoint = endpoint

    def is_dir(self, path: str) -> bool:
        bucket, key = self._split(path)
        with self.errors(path):
            try:
                listing = self.fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key.rstrip("/") + "/" if key else "", MaxKeys=1)
            except FileNotFoundError:
                raise NotFound(f"{self.url(path)}: no such bucket {bucket!r}.") from None
        return bool(listing.get("KeyCount") or listing.get("Contents") or listing.get("CommonPrefixes"))

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        bucket, key = self._split(path)

        async def get() -> tuple[bytes, str, float | None, int]:
            response = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            size = int(response.get("ContentLength") or 0)
            async with response["Body"] as body:
                data = b"" if size > limit else await body.read()  # a huge object is judged, not fetched
            modified = response.get("LastModified")
            return data, response["ETag"], modified.timestamp() if modified else None, size

        with self.errors(path):
            try:
                data, etag, modified, size = _sync(self.fs, get)
            except FileNotFoundError as exc:
                if _error_code(exc) == "NoSuchBucket":
                    raise NotFound(f"{self.url(path)}: no such bucket {bucket!r}.") from exc
                return None
        return Stored(data, etag, modified, size=size if size > len(data) else None)

    def create(self, path: str, data: bytes) -> Stored:
        return self._put(path, data, AlreadyExists, IfNoneMatch="*")

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        return self._put(path, data, Conflict, IfMatch=str(expected.version))

    def _put(self, path: str, data: bytes, lost: type[Exception], **condition: str) -> Stored:
        bucket, key = self._split(path)
        with self.errors(path):
            try:
                response = self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
            except FileNotFoundError as exc:
                if _error_code(exc) == "NoSuchBucket":
                    raise NotFound(f"{self.url(path)}: no such bucket {bucket!r}.") from None
                raise Conflict(path) from None  # If-Match on an object that is gone
            except OSError as exc:
                if _failed_condition(exc):
                    raise lost(path) from None
                raise
        return Stored(data, response["ETag"], time.time())

    def delete(self, path: str, expected: Stored) -> None:
        bucket, key = self._split(path)
        with self.errors(path):
            try:
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=str(expected.version))
            except (FileNotFoundError, OSError) as exc:
                if _failed_condition(exc) or isinstance(exc, FileNotFoundError):
                    raise Conflict(path) from None
                raise

    def list_tree(self, path: str, budget: int) -> list[str] | None:
        bucket, key = self._split(path)
        prefix = key.rstrip("/") + "/" if key else ""
        with self.errors(path):
            page = self.fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, MaxKeys=min(budget, 1000))
        if page.get("IsTruncated"):
            return None
        return [item["Key"][len(prefix) :] for item in page.get("Contents", [])]

    def probe_conditional_writes(self, dataset: str) -> bool:
        """Some S3-compatible servers accept If-None-Match and ignore it: try it on a scratch object."""
        scratch = f"{dataset.rstrip('/')}/.dlock-probe-{secrets.token_hex(6)}"
        bucket, key = self._split(scratch)
        try:
            first = self.create(scratch, b"1")
            try:
                self.create(scratch, b"2")
                honoured = False
            except AlreadyExists:
                honoured = True
            if honoured:
                try:
                    self.replace(scratch, b"3", Stored(b"", '"0000"', None))
                    honoured = False
                except Conflict:
                    pass
            del first
        finally:
            with contextlib.suppress(Exception):
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key)
        return honoured


# -- GCS -------------------------------------------------------------------------------------------


class GCSStore(FsspecStore):
    """gcsfs plus generation preconditions (gcsfs reports every HTTP 412 as FileExistsError)."""

    atomic = True
    lists_trees = True
    endpoint_hint = "STORAGE_EMULATOR_HOST if you use an emulator"
    credentials_hint = "GOOGLE_APPLICATION_CREDENTIALS (or -o token=anon for a public bucket)"

    def __init__(self, fs: Any, target: str, scheme: str) -> None:
        super().__init__(fs, scheme, target)

    def is_dir(self, path: str) -> bool:
        bucket, key = self._split(path)
        with self.errors(path):
            try:
                listing = self.fs.call("GET", "b/{}/o", bucket, prefix=key.rstrip("/") + "/" if key else "",
                                       maxResults=1, json_out=True)
            except FileNotFoundError:
                raise NotFound(f"{self.url(path)}: no such bucket {bucket!r}.") from None
        return bool(listing.get("items") or listing.get("prefixes"))

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        bucket, key = self._split(path)
        with self.errors(path):
            try:
                meta = self.fs.call("GET", "b/{}/o/{}", bucket, key, json_out=True)
                size = int(meta.get("size") or 0)
                data = b""
                if size <= limit:  # a huge object is judged, not fetched
                    # Fetch exactly the generation the metadata names: data and version agree.
                    _, data = self.fs.call("GET", "b/{}/o/{}", bucket, key, alt="media", generation=meta["generation"])
            except FileNotFoundError:
                return None
        return Stored(data, str(meta["generation"]), _mtime({"mtime": meta.get("updated")}),
                      size=size if size > len(data) else None)

    def create(self, path: str, data: bytes) -> Stored:
        return self._upload(path, data, AlreadyExists, "0")

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        return self._upload(path, data, Conflict, str(expected.version))

    def _upload(self, path: str, data: bytes, lost: type[Exception], generation: str) -> Stored:
        bucket, key = self._split(path)
        metadata = json.dumps({"name": key})
        body = (
            f"--==0==\nContent-Type: application/json; charset=UTF-8\n\n{metadata}\n"
            "--==0==\nContent-Type: application/octet-stream\n\n"
        ).encode() + data + b"\n--==0==--"
        upload = f"{self.fs._location}/upload/storage/v1/b/{bucket}/o"
        with self.errors(path):
            try:
                # A multipart upload: the form whose precondition fake-gcs-server honours too.
                result = self.fs.call("POST", upload, uploadType="multipart", ifGenerationMatch=generation,
                                      headers={"Content-Type": 'multipart/related; boundary="==0=="'},
                                      data=body, json_out=True)
            except FileExistsError:
                raise lost(path) from None
            except FileNotFoundError:
                raise Conflict(path) if lost is Conflict else NotFound(f"{self.url(path)}: no such bucket {bucket!r}.") from None
        return Stored(data, str(result["generation"]), _mtime({"mtime": result.get("updated")}))

    def delete(self, path: str, expected: Stored) -> None:
        bucket, key = self._split(path)
        with self.errors(path):
            try:
                self.fs.call("DELETE", "b/{}/o/{}", bucket, key, ifGenerationMatch=str(expected.version))
            except (FileExistsError, FileNotFoundError):
                raise Conflict(path) from None

    def list_tree(self, path: str, budget: int) -> list[str] | None:
        bucket, key = self._split(path)
        prefix = key.rstrip("/") + "/" if key else ""
        with self.errors(path):
            page = self.fs.call("GET", "b/{}/o", bucket, prefix=prefix, maxResults=min(budget, 1000),
                                fields="items(name),nextPageToken", json_out=True)
        if page.get("nextPageToken"):
            return None
        return [item["name"][len(prefix) :] for item in page.get("items", [])]


# -- opening targets -------------------------------------------------------------------------------


def _location(target: str) -> tuple[str, str]:
    scheme, _, rest = target.partition("://")
    path = rest.strip("/")
    if not path or path.startswith("/"):
        raise UsageError(f"{target!r} names no bucket; use {scheme}://bucket/path/to/dataset.")
    return scheme.lower(), path


def open_s3(target: str, location: str, options: Options) -> Backend:
    scheme, path = _location(location)
    storage = parse_storage_options(options.storage_options)
    import s3fs  # noqa: PLC0415  (heavy: only for s3:// targets)

    # Bounded retries and timeouts: an unreachable endpoint is an error in seconds, not minutes.
    config = storage.pop("config_kwargs", {}) or {}
    config.setdefault("connect_timeout", 5)
    config.setdefault("read_timeout", 20)
    config.setdefault("retries", {"max_attempts": 3, "mode": "standard"})
    endpoint = storage.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    fs = s3fs.S3FileSystem(use_listings_cache=False, config_kwargs=config, **storage)
    fs.retries = 3
    store = S3Store(fs, target, endpoint)
    backend = LockFileBackend(store, path, target, options)
    if endpoint and not _trusted_endpoint(endpoint):
        _apply_probe(store, path, endpoint)
    backend.atomic = store.atomic
    return backend


def open_gcs(target: str, location: str, options: Options) -> Backend:
    scheme, path = _location(location)
    storage = parse_storage_options(options.storage_options)
    # gcsfs 2026.x probes every bucket's type over gRPC (60 s against anything but real
    # GCS) when its experimental zonal/HNS support is on, which is its default. dlock's
    # lock files need none of it; a user who does can set the variable to true.
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    import gcsfs  # noqa: PLC0415  (heavy: only for gs:// targets)

    if os.environ.get("STORAGE_EMULATOR_HOST") and "token" not in storage:
        storage["token"] = "anon"  # the emulator takes no credentials
    fs = _bounded_gcs_filesystem(gcsfs)(use_listings_cache=False, **storage)
    return LockFileBackend(GCSStore(fs, target, scheme), path, target, options)


@functools.lru_cache(maxsize=None)
def _bounded_gcs_filesystem(gcsfs: Any) -> Any:
    """gcsfs retries every request 6 times with backoff up to 16 s (~31 s against an
    endpoint that is down); a lock tool should say so within seconds. Same retriable
    errors (5xx, 429, connection), 4 attempts, ~3 s in all."""
    import asyncio  # noqa: PLC0415

    from gcsfs.retry import is_retriable  # noqa: PLC0415

    raw_request = gcsfs.GCSFileSystem._request.__wrapped__

    class BoundedGCSFileSystem(gcsfs.GCSFileSystem):  # type: ignore[misc]
        async def _request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            for attempt in range(4):
                try:
                    return await raw_request(self, method, path, *args, **kwargs)
                except (FileNotFoundError, FileExistsError, ValueError):
                    raise
                except Exception as exc:  # noqa: BLE001
                    if attempt == 3 or not is_retriable(exc):
                        raise
                    await asyncio.sleep(0.25 * 3**attempt)
            raise AssertionError("unreachable")

    return BoundedGCSFileSystem


def open_generic(target: str, location: str, options: Options) -> Backend:
    import fsspec  # noqa: PLC0415

    scheme = location.partition("://")[0].lower()
    try:
        fs, path = fsspec.core.url_to_fs(location, **parse_storage_options(options.storage_options))
    except (ImportError, ValueError) as exc:
        raise UsageError(f"{target}: no filesystem for {scheme}:// ({exc}).") from None
    warnings.warn(
        f"{target}: {scheme}:// has no conditional writes, so dlock falls back to Deep Lake's "
        "write-wait-verify protocol; two machines racing could both take the lock.",
        NotAtomicWarning,
        stacklevel=2,
    )
    return LockFileBackend(FsspecStore(fs, scheme, target), path, target, options)


# -- the conditional-write probe -----------------------------------------------------------------


def _trusted_endpoint(endpoint: str) -> bool:
    """AWS itself honours If-None-Match and If-Match; other S3-compatible servers are probed."""
    host = endpoint.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.endswith(".amazonaws.com")


def _apply_probe(store: S3Store, dataset: str, endpoint: str) -> None:
    honoured = _cached_probe(endpoint)
    if honoured is None:
        try:
            honoured = store.probe_conditional_writes(dataset)
        except DLockError:
            return  # the real operation will report the store's error itself
        _remember_probe(endpoint, honoured)
    if not honoured:
        store.atomic = False
        store.__class__ = _VerifyingS3Store
        warnings.warn(
            f"{endpoint} ignores S3 conditional writes (If-None-Match/If-Match), so dlock falls back to "
            "Deep Lake's write-wait-verify protocol there; two machines racing could both take the lock.",
            NotAtomicWarning,
            stacklevel=3,
        )


class _VerifyingS3Store(S3Store):
    """An S3-compatible server that ignores preconditions: Deep Lake's protocol, visibly."""

    atomic = False
    create = FsspecStore.create  # type: ignore[assignment]
    replace = FsspecStore.replace  # type: ignore[assignment]
    delete = FsspecStore.delete  # type: ignore[assignment]


_PROBES: dict[str, bool] = {}


def _cached_probe(endpoint: str) -> bool | None:
    if endpoint in _PROBES:
        return _PROBES[endpoint]
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        entry = json.loads(PROBE_CACHE.read_text())[endpoint]
        if time.time() - float(entry["checked"]) < PROBE_MAX_AGE:
            _PROBES[endpoint] = bool(entry["conditional"])
            return _PROBES[endpoint]
    return None


def _remember_probe(endpoint: str, honoured: bool) -> None:
    _PROBES[endpoint] = honoured
    with contextlib.suppress(OSError, ValueError):
        PROBE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        try:
            cache = json.loads(PROBE_CACHE.read_text())
        except (OSError, ValueError):
            cache = {}
        cache[endpoint] = {"conditional": honoured, "checked": time.time()}
        temp = PROBE_CACHE.with_suffix(f".{secrets.token_hex(4)}.tmp")
        temp.write_text(json.dumps(cache))
        os.replace(temp, PROBE_CACHE)


# -- small helpers ---------------------------------------------------------------------------------


def _sync(fs: Any, coroutine_function: Any) -> Any:
    from fsspec.asyn import sync  # noqa: PLC0415

    return sync(fs.loop, coroutine_function)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen = 0
    cause = exc.__cause__ or exc.__context__
    while cause is not None and seen < 5:
        yield cause
        cause = cause.__cause__ or cause.__context__
        seen += 1


def _error_code(exc: BaseException) -> str | None:
    for error in (exc, *_causes(exc)):
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
    return None


def _failed_condition(exc: BaseException) -> bool:
    """412 Precondition Failed, or 409 ConditionalRequestConflict (a concurrent conditional write)."""
    return isinstance(exc, FileExistsError) or _error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _mtime(info: dict[str, Any]) -> float | None:
    value = info.get("mtime") or info.get("LastModified") or info.get("updated")
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    from datetime import datetime  # noqa: PLC0415

    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    return None
