"""Lock files on S3: create with `If-None-Match: *`, replace and delete with `If-Match: <etag>`.

s3fs drops conditions it does not know how to pass on (`rm_file(p, IfMatch=...)` deletes
unconditionally, a zero-byte `open(p, "xb")` is not exclusive), so every conditional
operation goes to the client itself with `call_s3`. Only an If-None-Match failure
becomes FileExistsError there; an If-Match failure is an OSError(EINVAL).

Imported only when an s3:// target needs it (s3fs takes ~0.4 s to import).
"""

from __future__ import annotations

import os
import time
from typing import Mapping

import s3fs
from fsspec.asyn import sync

from dlock.stores import probe
from dlock.stores.base import MAX_LOCK_BYTES, AlreadyExists, Conflict, Store, Stored
from dlock.stores.fsspec import FsspecStore, OptionValue, VerifyingStore, bucket_path, error_code, key_prefix, parse_storage_options


class S3Store(FsspecStore):
    """s3fs plus the client's conditional PUT and DELETE; one GET reads data and ETag together."""

    lists_trees = True
    endpoint_hint = "the endpoint (AWS_ENDPOINT_URL or -o endpoint_url=...)"
    credentials_hint = "AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or -o anon=true for a public bucket)"

    def __init__(self, fs: s3fs.S3FileSystem) -> None:
        super().__init__(fs, "s3")  # s3a:// too: the objects are S3's

    def is_dir(self, path: str) -> bool:
        bucket, key = self.split(path)
        with self.errors(path):
            try:
                listing = self.fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key_prefix(key), MaxKeys=1)
            except FileNotFoundError:
                raise self.no_bucket(path) from None
        return bool(listing.get("KeyCount") or listing.get("Contents") or listing.get("CommonPrefixes"))

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        bucket, key = self.split(path)

        async def get() -> Stored:
            response = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
            size = int(response.get("ContentLength") or 0)
            async with response["Body"] as body:
                data = b"" if size > limit else await body.read()  # a huge object is judged, not fetched
            modified = response.get("LastModified")
            return Stored(data, response["ETag"], modified.timestamp() if modified else None,
                          size=size if size > len(data) else None)

        with self.errors(path):
            try:
                stored: Stored = sync(self.fs.loop, get)
            except FileNotFoundError as exc:
                if error_code(exc) == "NoSuchBucket":
                    raise self.no_bucket(path) from exc
                return None
        return stored

    def create(self, path: str, data: bytes) -> Stored:
        return self._put(path, data, AlreadyExists, IfNoneMatch="*")

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        return self._put(path, data, Conflict, IfMatch=str(expected.version))

    def _put(self, path: str, data: bytes, lost: type[Exception], **condition: str) -> Stored:
        bucket, key = self.split(path)
        with self.errors(path):
            try:
                response = self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
            except FileNotFoundError as exc:
                if error_code(exc) == "NoSuchBucket":
                    raise self.no_bucket(path) from None
                raise Conflict(path) from None  # If-Match on an object that is gone
            except OSError as exc:
                if _failed_condition(exc):
                    raise lost(path) from None
                raise
        return Stored(data, response["ETag"], time.time())

    def delete(self, path: str, expected: Stored) -> None:
        bucket, key = self.split(path)
        with self.errors(path):
            try:
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=str(expected.version))
            except (FileNotFoundError, OSError) as exc:
                if _failed_condition(exc) or isinstance(exc, FileNotFoundError):
                    raise Conflict(path) from None
                raise

    def list_tree(self, path: str, budget: int) -> list[str] | None:
        bucket, key = self.split(path)
        prefix = key_prefix(key)
        with self.errors(path):
            page = self.fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, MaxKeys=min(budget, 1000))
        if page.get("IsTruncated"):
            return None
        return [item["Key"][len(prefix) :] for item in page.get("Contents", [])]


class VerifyingS3Store(VerifyingStore, S3Store):
    """An S3-compatible server that accepts If-None-Match and If-Match and ignores them: S3's
    reads and listings, Deep Lake's write-wait-verify protocol for lock files, visibly."""


def open_store(location: str, storage_options: Mapping[str, str]) -> tuple[Store, str]:
    _, path = bucket_path(location)
    storage = parse_storage_options(storage_options)
    endpoint = storage.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    fs = _filesystem(storage)
    store = S3Store(fs)
    if isinstance(endpoint, str) and probe.ignores_conditions(store, path, endpoint, "S3"):
        return VerifyingS3Store(fs), path
    return store, path


def _filesystem(storage: dict[str, OptionValue]) -> s3fs.S3FileSystem:
    """Bounded retries and timeouts: an unreachable endpoint is an error in seconds, not minutes."""
    given = storage.pop("config_kwargs", None)
    config = dict(given) if isinstance(given, dict) else {}
    config.setdefault("connect_timeout", 5)
    config.setdefault("read_timeout", 20)
    config.setdefault("retries", {"max_attempts": 3, "mode": "standard"})
    fs = s3fs.S3FileSystem(use_listings_cache=False, config_kwargs=config, **storage)
    fs.retries = 3
    return fs


def _failed_condition(exc: BaseException) -> bool:
    """412 Precondition Failed, or 409 ConditionalRequestConflict (a concurrent conditional write)."""
    return isinstance(exc, FileExistsError) or error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
