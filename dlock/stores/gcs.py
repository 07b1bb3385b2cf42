"""Lock files on Google Cloud Storage: generation preconditions, `ifGenerationMatch=0` to
create and `ifGenerationMatch=<generation seen>` to replace or delete.

gcsfs reports every HTTP 412 as FileExistsError, a failed conditional delete too.
Uploads are multipart: fake-gcs-server honours ifGenerationMatch on that form only.

Imported only when a gs:// target needs it (gcsfs takes ~0.8 s to import).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
from typing import Mapping

# gcsfs 2026.x probes every bucket's type over gRPC (60 s against anything but real GCS)
# when its experimental zonal/HNS support is on, which is its default, and it reads this
# variable when it is imported. dlock's lock files need none of it; a user who does can
# set the variable to true.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import gcsfs  # noqa: E402
from gcsfs.retry import HttpError, is_retriable  # noqa: E402

from dlock.stores.base import MAX_LOCK_BYTES, AlreadyExists, Conflict, Store, Stored  # noqa: E402
from dlock.stores.fsspec import FsspecStore, bucket_path, key_prefix, mtime, parse_storage_options  # noqa: E402


class GCSStore(FsspecStore):
    """gcsfs plus generation preconditions."""

    lists_trees = True
    endpoint_hint = "STORAGE_EMULATOR_HOST if you use an emulator"
    credentials_hint = "GOOGLE_APPLICATION_CREDENTIALS (or -o token=anon for a public bucket)"

    fs: BoundedGCSFileSystem

    def is_dir(self, path: str) -> bool:
        bucket, key = self.split(path)
        with self.errors(path):
            try:
                listing = self.fs.call("GET", "b/{}/o", bucket, prefix=key_prefix(key),
                                       maxResults=1, json_out=True)
            except FileNotFoundError:
                raise self.no_bucket(path) from None
        return bool(listing.get("items") or listing.get("prefixes"))

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        """One request: the bytes with their generation in x-goog-generation; a range bounds
        what is fetched and Content-Range tells the whole size."""
        bucket, key = self.split(path)
        with self.errors(path):
            try:
                headers, data = self.fs.call("GET", "b/{}/o/{}", bucket, key, alt="media",
                                             headers={"Range": f"bytes=0-{limit}"})
            except FileNotFoundError:
                return None
            except HttpError as exc:
                if exc.code != 416:
                    raise
                return self._read_in_two(path, limit)  # an empty object has no byte 0
        generation = headers.get("X-Goog-Generation") or headers.get("x-goog-generation")
        if generation is None:
            return self._read_in_two(path, limit)
        total = headers.get("Content-Range", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else len(data)
        data = b"" if size > limit else bytes(data)  # a huge object is judged, not kept
        return Stored(data, str(generation), mtime({"mtime": _http_date(headers.get("Last-Modified"))}),
                      size=size if size > len(data) else None)

    def _read_in_two(self, path: str, limit: int) -> Stored | None:
        """Metadata, then exactly the generation it names: data and version agree."""
        bucket, key = self.split(path)
        with self.errors(path):
            try:
                meta = self.fs.call("GET", "b/{}/o/{}", bucket, key, json_out=True)
                size = int(meta.get("size") or 0)
                data = b""
                if size <= limit:  # a huge object is judged, not fetched
                    _, data = self.fs.call("GET", "b/{}/o/{}", bucket, key, alt="media", generation=meta["generation"])
            except FileNotFoundError:
                return None
        return Stored(data, str(meta["generation"]), mtime({"mtime": meta.get("updated")}),
                      size=size if size > len(data) else None)

    def create(self, path: str, data: bytes) -> Stored:
        return self._upload(path, data, AlreadyExists, "0")

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        return self._upload(path, data, Conflict, str(expected.version))

    def _upload(self, path: str, data: bytes, lost: type[Exception], generation: str) -> Stored:
        bucket, key = self.split(path)
        metadata = json.dumps({"name": key})
        body = (
            f"--==0==\nContent-Type: application/json; charset=UTF-8\n\n{metadata}\n"
            "--==0==\nContent-Type: application/octet-stream\n\n"
        ).encode() + data + b"\n--==0==--"
        upload = f"{self.fs._location}/upload/storage/v1/b/{bucket}/o"
        with self.errors(path):
            try:
                result = self.fs.call("POST", upload, uploadType="multipart", ifGenerationMatch=generation,
                                      headers={"Content-Type": 'multipart/related; boundary="==0=="'},
                                      data=body, json_out=True)
            except FileExistsError:
                raise lost(path) from None
            except FileNotFoundError:
                raise Conflict(path) if lost is Conflict else self.no_bucket(path) from None
        return Stored(data, str(result["generation"]), mtime({"mtime": result.get("updated")}))

    def delete(self, path: str, expected: Stored) -> None:
        bucket, key = self.split(path)
        with self.errors(path):
            try:
                self.fs.call("DELETE", "b/{}/o/{}", bucket, key, ifGenerationMatch=str(expected.version))
            except (FileExistsError, FileNotFoundError):
                raise Conflict(path) from None

    def list_tree(self, path: str, budget: int) -> list[str] | None:
        bucket, key = self.split(path)
        prefix = key_prefix(key)
        with self.errors(path):
            page = self.fs.call("GET", "b/{}/o", bucket, prefix=prefix, maxResults=min(budget, 1000),
                                fields="items(name),nextPageToken", json_out=True)
        if page.get("nextPageToken"):
            return None
        return [item["name"][len(prefix) :] for item in page.get("items", [])]


class BoundedGCSFileSystem(gcsfs.GCSFileSystem):  # type: ignore[misc]
    """gcsfs retries every request 6 times with backoff up to 16 s (~31 s against an
    endpoint that is down); a lock tool should say so within seconds. Same retriable
    errors (5xx, 429, connection), 4 attempts, ~3 s in all."""

    async def _request(self, method: str, path: str, *args: object, **kwargs: object) -> object:
        for attempt in range(4):
            try:
                return await _UNRETRIED_REQUEST(self, method, path, *args, **kwargs)
            except (FileNotFoundError, FileExistsError, ValueError):
                raise
            except Exception as exc:  # noqa: BLE001
                if attempt == 3 or not is_retriable(exc):
                    raise
                await asyncio.sleep(0.25 * 3**attempt)
        raise AssertionError("unreachable")


def _http_date(text: str | None) -> float | None:
    """Last-Modified: an HTTP date, to epoch seconds."""
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


# gcsfs's own request, without the retry decorator it is wrapped in.
_UNRETRIED_REQUEST = gcsfs.GCSFileSystem._request.__wrapped__


def open_store(location: str, storage_options: Mapping[str, str]) -> tuple[Store, str]:
    scheme, path = bucket_path(location)
    storage = parse_storage_options(storage_options)
    if os.environ.get("STORAGE_EMULATOR_HOST") and "token" not in storage:
        storage["token"] = "anon"  # the emulator takes no credentials
    fs = BoundedGCSFileSystem(use_listings_cache=False, **storage)
    return GCSStore(fs, scheme), path
