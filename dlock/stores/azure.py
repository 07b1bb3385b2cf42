"""Lock files on Azure Blob Storage: create with `If-None-Match: *`, replace and delete with
`If-Match: <etag>`.

adlfs (fsspec's az://, abfs:// and abfss://) lists, reads and writes data files, but its
`rm_file` and `pipe_file` pass no etag, so every conditional operation goes to the
azure-storage-blob client adlfs wraps (`fs.service_client`). Azure refuses a create-only
write with 409 BlobAlreadyExists and any other failed condition with 412 ConditionNotMet;
an If-Match on a blob that is gone may come back as either (Azurite: 412) or as 404
BlobNotFound, and dlock reads every one of them as a lost condition.

Imported only when an Azure target needs it (adlfs and the Azure SDK take ~0.35 s to import).
Never sent: `If-Match: *`, which Azurite honours differently from Azure (it creates a
missing blob instead of answering 412).
"""

from __future__ import annotations

import datetime
import os
from typing import Awaitable, Callable, Mapping, TypeVar

from adlfs import AzureBlobFileSystem
from azure.core import MatchConditions
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob.aio import BlobClient, ContainerClient
from fsspec.asyn import sync

from dlock.errors import BackendError, DLockError, NotFound
from dlock.stores import probe
from dlock.stores.base import MAX_LOCK_BYTES, AlreadyExists, Conflict, Store, Stored
from dlock.stores.fsspec import FsspecStore, OptionValue, VerifyingStore, bucket_path, key_prefix, parse_storage_options

T = TypeVar("T")

# A wrong key: Azure says AuthenticationFailed, Azurite AuthorizationFailure with the same sentence.
BAD_CREDENTIALS = ("AuthenticationFailed", "InvalidAuthenticationInfo", "NoAuthenticationInformation")
CONNECT_TIMEOUT, READ_TIMEOUT = 5, 20  # seconds, per request


class AzureStore(FsspecStore):
    """adlfs plus the blob client's conditional PUT and DELETE; one ranged GET reads data and ETag together."""

    lists_trees = True
    endpoint_hint = "the account and endpoint (-o account_name=..., or AZURE_STORAGE_CONNECTION_STRING's BlobEndpoint)"
    credentials_hint = ("AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or "
                        "AZURE_STORAGE_SAS_TOKEN (or -o account_name=... -o account_key=...)")

    fs: AzureBlobFileSystem

    def __init__(self, fs: AzureBlobFileSystem, scheme: str, host: str | None = None) -> None:
        super().__init__(fs, scheme)
        self.host = host  # abfss://container@ACCOUNT.dfs.core.windows.net/...: shown as given

    def url(self, path: str) -> str:
        if self.host is None:
            return super().url(path)
        container, key = self.split(path)
        return f"{self.scheme}://{container}@{self.host}/{key}"

    def no_bucket(self, path: str) -> NotFound:
        return NotFound(f"{self.url(path)}: no such container {self.split(path)[0]!r} in this storage account.")

    # -- the SDK's async clients, driven on adlfs's event loop -----------------------------

    def _on_blob(self, path: str, operation: Callable[[BlobClient], Awaitable[T]]) -> T:
        container, key = self.split(path)

        async def run() -> T:
            async with self.fs.service_client.get_blob_client(container, key) as blob:
                return await operation(blob)

        with self.errors(path):
            result: T = sync(self.fs.loop, run)
        return result

    def _first_page(self, path: str, size: int) -> tuple[list[str], bool]:
        """Names of the first `size` blobs under `path` (relative to it), and whether there are
        more: one request for one more than `size`."""
        container, key = self.split(path)
        prefix = key_prefix(key)

        async def run() -> tuple[list[str], bool]:
            client: ContainerClient
            async with self.fs.service_client.get_container_client(container) as client:
                pages = client.list_blobs(name_starts_with=prefix or None, results_per_page=size + 1,
                                        connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT).by_page()
                async for page in pages:
                    names = [blob.name[len(prefix):] async for blob in page]
                    return names[:size], len(names) > size
            return [], False

        with self.errors(path):
            try:
                listed: tuple[list[str], bool] = sync(self.fs.loop, run)
            except ResourceNotFoundError:
                raise self.no_bucket(path) from None
        return listed

    # -- Store -------------------------------------------------------------------------

    def is_dir(self, path: str) -> bool:
        return bool(self._first_page(path, 1)[0])

    def list_tree(self, path: str, budget: int) -> list[str] | None:
        names, more = self._first_page(path, min(budget, 4999))  # Azure lists 5,000 blobs a page
        return None if more else names

    def read(self, path: str, limit: int = MAX_LOCK_BYTES) -> Stored | None:
        first = max(1, min(limit, MAX_LOCK_BYTES))  # a huge object is judged by its size, not fetched

        async def get(blob: BlobClient) -> Stored | None:
            try:
                download = await blob.download_blob(offset=0, length=first, connection_timeout=CONNECT_TIMEOUT,
                                                     read_timeout=READ_TIMEOUT)
            except ResourceNotFoundError as exc:
                _absent(exc, self, path)
                return None
            except HttpResponseError as exc:
                if exc.status_code != 416:
                    raise
                # Azure refuses any range of an empty blob; its properties say all there is.
                properties = await blob.get_blob_properties(connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
                if properties.size:
                    raise Conflict(path) from None  # rewritten between the two requests
                return Stored(b"", properties.etag, _timestamp(properties.last_modified))
            properties = download.properties
            # Only the first `first` bytes come: Content-Range names the whole size.
            size = int(str(properties.content_range).rsplit("/", 1)[-1]) if properties.content_range else properties.size
            if size > limit:
                return Stored(b"", properties.etag, _timestamp(properties.last_modified), size=size)
            if size > first:  # a large Deep Lake version record: the rest, of exactly this version
                try:
                    download = await blob.download_blob(offset=0, length=size, etag=properties.etag,
                                                         match_condition=MatchConditions.IfNotModified,
                                                         connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
                except (ResourceModifiedError, ResourceNotFoundError):
                    raise Conflict(path) from None  # rewritten between the two requests
            return Stored(await download.readall(), properties.etag, _timestamp(properties.last_modified))

        try:
            return self._on_blob(path, get)
        except Conflict:
            return self._on_blob(path, get)  # once more: a lock file changing under a read is rare

    def create(self, path: str, data: bytes) -> Stored:
        return self._put(path, data, AlreadyExists, None)

    def replace(self, path: str, data: bytes, expected: Stored) -> Stored:
        return self._put(path, data, Conflict, str(expected.version))

    def _put(self, path: str, data: bytes, lost: type[Exception], etag: str | None) -> Stored:
        """If-Match: etag, or with no etag If-None-Match: * (the SDK's overwrite=False)."""

        async def put(blob: BlobClient) -> Stored:
            # The SDK passes a keyword it does not know (etag=None too) on to the HTTP session.
            if etag is None:
                upload = blob.upload_blob(data, overwrite=False, connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
            else:
                upload = blob.upload_blob(data, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified,
                                          connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
            try:
                response = await upload
            except (ResourceExistsError, ResourceModifiedError):
                raise lost(path) from None
            except ResourceNotFoundError as exc:
                _absent(exc, self, path)
                raise Conflict(path) from None  # If-Match on a blob that is gone
            return Stored(data, response["etag"], _timestamp(response.get("last_modified")))

        return self._on_blob(path, put)

    def delete(self, path: str, expected: Stored) -> None:
        async def delete(blob: BlobClient) -> None:
            try:
                await blob.delete_blob(etag=str(expected.version), match_condition=MatchConditions.IfNotModified,
                                       connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
            except (ResourceModifiedError, ResourceNotFoundError):
                raise Conflict(path) from None

        self._on_blob(path, delete)

    # -- Azure's own errors ------------------------------------------------------------

    def translate(self, path: str, exc: BaseException) -> DLockError:
        url = self.url(path)
        code = _error_code(exc)
        if code in BAD_CREDENTIALS or "failed to authenticate" in str(exc)[:200]:
            return BackendError(f"{url}: Azure rejected the credentials ({code or 'authentication failed'}). "
                                f"Check {self.credentials_hint}.")
        if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
            return BackendError(f"{url}: no usable Azure credentials found. Set {self.credentials_hint}.")
        if getattr(exc, "status_code", None) == 403:
            return BackendError(f"{url}: access denied ({code}). Check that the credentials may read and write this container.")
        if code in ("ServerBusy", "OperationTimedOut") or getattr(exc, "status_code", None) in (429, 503):
            return BackendError(f"{url}: the store is throttling requests even after retries; try again later.")
        return super().translate(path, exc)


class VerifyingAzureStore(VerifyingStore, AzureStore):
    """An Azure-compatible endpoint (emulator, gateway) that accepts the conditions and ignores
    them: Azure's reads and listings, Deep Lake's write-wait-verify protocol, visibly."""


def open_store(location: str, storage_options: Mapping[str, str]) -> tuple[Store, str]:
    scheme, path = bucket_path(location)
    container, _, key = path.partition("/")
    host = None
    if "@" in container:  # abfs[s]://container@account.dfs.core.windows.net/path, adlfs's long form
        container, host = container.split("@", 1)
        path = f"{container}/{key}".rstrip("/")
    storage = parse_storage_options(storage_options)
    if host and "account_name" not in storage:
        storage["account_name"] = host.split(".", 1)[0]
    fs = _filesystem(location, storage)
    store = AzureStore(fs, scheme, host)
    endpoint = str(fs.service_client.url)
    if probe.ignores_conditions(store, path, endpoint, "Azure"):
        return VerifyingAzureStore(fs, scheme, host), path
    return store, path


def _filesystem(location: str, storage: dict[str, OptionValue]) -> AzureBlobFileSystem:
    storage.setdefault("use_listings_cache", False)
    storage.setdefault("connection_timeout", CONNECT_TIMEOUT)
    storage.setdefault("read_timeout", READ_TIMEOUT)
    account_given = storage.get("account_name") or storage.get("connection_string") or any(
        os.environ.get(f"AZURE_STORAGE_{name}") for name in ("ACCOUNT_NAME", "CONNECTION_STRING"))
    if not account_given:
        raise BackendError(f"{location}: no Azure storage account given. Set AZURE_STORAGE_ACCOUNT_NAME or "
                         "AZURE_STORAGE_CONNECTION_STRING, or give -o account_name=....")
    try:
        fs = AzureBlobFileSystem(**storage)
    except (ValueError, ImportError) as exc:  # a malformed connection string or key, or no azure-identity
        raise BackendError(f"{location}: cannot use the Azure credentials given ({type(exc).__name__}). "
                           f"Check {AzureStore.credentials_hint}.") from None
    _bound_retries(fs)
    return fs


def _bound_retries(fs: AzureBlobFileSystem) -> None:
    """The SDK retries 3 times after 15 s, 18 s and 24 s (~60 s against an endpoint that is
    down); a lock tool should say so within seconds. Same retries, backoff 0.2, 1.7, 2.5 s."""
    policy = fs.service_client._config.retry_policy
    policy.initial_backoff, policy.increment_base, policy.random_jitter_range = 0.2, 1.5, 0.1


def _absent(exc: ResourceNotFoundError, store: AzureStore, path: str) -> None:
    """A missing container is the user's error; a missing blob is an answer."""
    if _error_code(exc) == "ContainerNotFound":
        raise store.no_bucket(path) from None
    return None


def _error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "error_code", None)
    return None if code is None else str(getattr(code, "value", code))


def _timestamp(moment: object) -> float | None:
    return moment.timestamp() if isinstance(moment, datetime.datetime) else None
