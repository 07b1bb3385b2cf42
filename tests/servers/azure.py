"""Azure Blob Storage through Azurite (npm package `azurite`, installed by
scripts/install-system-deps.sh into .cache/azurite), which honours If-None-Match and If-Match.
Its account and key are the test's own, so a test can tell that the key is never printed."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from servers._util import free_port, serving

SITES = ["azure"]
ACCOUNT = "dlocktest"
KEY = "ZGxvY2stdGVzdC1rZXktZG8tbm90LXByaW50"  # base64 of a phrase: Azurite wants base64 keys
PROJECT_AZURITE = Path(__file__).resolve().parents[2] / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"


def azurite_binary() -> str | None:
    """$AZURITE_BLOB, the project's copy, or one on PATH (npm install -g azurite)."""
    for candidate in (os.environ.get("AZURITE_BLOB"), str(PROJECT_AZURITE), shutil.which("azurite-blob")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def azurite_command(binary: str, port: int) -> list[str]:
    """Blob service only, in memory; --disableProductStyleUrl: the account is the first path
    segment, never taken from the host name 127.0.0.1."""
    return [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
            "--skipApiVersionCheck", "--disableProductStyleUrl", "--disableTelemetry", "--silent"]


def connection_string(endpoint: str, key: str = KEY) -> str:
    return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};BlobEndpoint={endpoint}/{ACCOUNT};"


@pytest.fixture(scope="session")
def azurite_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from conftest import server_unavailable

    binary = azurite_binary()
    if binary is None:
        server_unavailable("Azurite (npm install --prefix .cache/azurite azurite; scripts/install-system-deps.sh does)")
    port = free_port()
    workspace = tmp_path_factory.mktemp("azurite")
    with serving(azurite_command(str(binary), port), port, workspace / "azurite.log", "Azurite", cwd=workspace,
                 env={**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{KEY}"}) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def azure_container(azurite_endpoint: str):  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string(azurite_endpoint))
    container = service.create_container(f"dlock-test-{uuid.uuid4().hex[:8]}")
    return container


@pytest.fixture
def site_azure(azurite_endpoint: str, azure_container, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from azure.core.exceptions import ResourceNotFoundError

    from conftest import Site

    env = {"AZURE_STORAGE_CONNECTION_STRING": connection_string(azurite_endpoint)}
    for key, value in env.items():  # the in-process API reaches the store the same way
        monkeypatch.setenv(key, value)

    def blob_of(url: str) -> str:
        return url.split("://", 1)[1].split("/", 1)[1]

    def put(url: str, data: bytes) -> None:
        azure_container.upload_blob(blob_of(url), data, overwrite=True)

    def get(url: str) -> bytes | None:
        try:
            return bytes(azure_container.download_blob(blob_of(url)).readall())
        except ResourceNotFoundError:
            return None

    return Site("azure", f"az://{azure_container.container_name}", env, {}, put, get)
