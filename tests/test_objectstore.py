"""What only object stores show: their errors, the probe, the visible fallback. Their conditional
primitives are in the Store contract suite (test_store_contract.py)."""

from __future__ import annotations

import datetime
import http.client
import http.server
import json
import socketserver
import threading
import time
from typing import Iterator

import pytest

import dlock
from conftest import DlockRunner, Site
from servers._util import free_port
from servers import azure as azurite
from servers.s3 import CREDENTIALS

OBJECT_SITES = ["s3", "gcs", "azure"]


@pytest.fixture(params=OBJECT_SITES)
def object_site(request: pytest.FixtureRequest) -> Site:
    return request.getfixturevalue(f"site_{request.param}")


def test_missing_bucket_exits_4_naming_it(object_site: Site):
    cli = DlockRunner(object_site.env)
    scheme = object_site.root.split("://")[0]
    result = cli("status", f"{scheme}://no-such-bucket-{int(time.time())}/ds")
    assert result.code == 4, result.err
    assert ("no such container" if scheme == "az" else "no such bucket") in result.err and "Traceback" not in result.err


def test_unreachable_endpoint_exits_4_quickly_without_printing_secrets(site_s3: Site):
    closed = f"http://127.0.0.1:{free_port()}"
    cli = DlockRunner({**site_s3.env, "AWS_ENDPOINT_URL": closed})
    started = time.monotonic()
    result = cli("acquire", f"{site_s3.root}/ds", "--timeout", "0")
    assert result.code == 4, result
    assert time.monotonic() - started < 30
    assert "cannot reach" in result.err and "Traceback" not in result.err
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in result.err + result.out


def test_unreachable_gcs_emulator_exits_4(site_gcs: Site):
    cli = DlockRunner({**site_gcs.env, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}"})
    started = time.monotonic()
    result = cli("status", f"{site_gcs.root}/ds", timeout=120)
    assert result.code == 4, result
    assert "cannot reach" in result.err and "Traceback" not in result.err
    assert time.monotonic() - started < 60


def test_storage_option_endpoint_url_reaches_the_store(site_s3: Site):
    ds = site_s3.new_dataset()
    env = {k: v for k, v in site_s3.env.items() if k != "AWS_ENDPOINT_URL"}
    cli = DlockRunner(env)
    cli.env.pop("AWS_ENDPOINT_URL", None)
    endpoint = site_s3.env["AWS_ENDPOINT_URL"]
    assert cli("status", ds, "-o", f"endpoint_url={endpoint}").code == 0


# -- the probe: an S3-compatible server that ignores preconditions -------------------------------


class _StripPreconditions(http.server.BaseHTTPRequestHandler):
    """A loopback proxy in front of moto that drops If-None-Match and If-Match, as some
    S3-compatible servers do (a known cause of silently broken Terraform locking)."""

    upstream_port = 0
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("if-none-match", "if-match", "host")}
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        connection.request(self.command, self.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ignoring_endpoint(site_s3: Site) -> Iterator[str]:
    yield from _stripping_proxy(int(site_s3.env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]))


def _stripping_proxy(upstream_port: int) -> Iterator[str]:
    handler = type("Handler", (_StripPreconditions,), {"upstream_port": upstream_port})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_ignores_conditional_writes_is_detected_and_falls_back_visibly(site_s3: Site, ignoring_endpoint, tmp_path):
    ds = site_s3.new_dataset()
    cli = DlockRunner({**site_s3.env, "AWS_ENDPOINT_URL": ignoring_endpoint, "XDG_CACHE_HOME": str(tmp_path)})
    acquired = cli("acquire", ds)
    assert acquired.code == 0, acquired.err
    assert "ignores S3 conditional writes" in acquired.err
    status = json.loads(cli("status", ds, "--json").out)
    assert status["targets"][0]["atomic"] is False
    assert status["state"] == "held"
    assert cli("acquire", ds).code == 1  # the verify protocol still sees the holder
    cache = json.loads((tmp_path / "dlock" / "conditional-writes.json").read_text())
    assert cache[ignoring_endpoint]["conditional"] is False
    direct = DlockRunner({**site_s3.env, "XDG_CACHE_HOME": str(tmp_path)})
    assert "ignores" not in direct("status", ds).err, "moto itself honours the conditions"
    assert json.loads(direct("status", ds, "--json").out)["targets"][0]["atomic"] is True


def test_generic_fsspec_store_falls_back_visibly(tmp_path, local_cli):
    ds = tmp_path / "ds"
    ds.mkdir()
    target = f"local://{ds}"  # fsspec's LocalFileSystem through the generic path, not dlock's local store
    acquired = local_cli("acquire", target)
    assert acquired.code == 0, acquired.err
    assert acquired.err.startswith("dlock: warning:") and "no conditional writes" in acquired.err
    assert (ds / "dataset_lock.lock").exists()
    assert local_cli("acquire", target).code == 1
    status = json.loads(local_cli("status", target, "--json").out)
    assert status["targets"][0]["atomic"] is False and status["state"] == "held"
    assert local_cli("release", target, "--token", acquired.out.strip()).code == 0


def test_missing_s3_credentials_name_the_aws_variables_only(site_s3: Site):
    no_credentials = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_EC2_METADATA_DISABLED": "true",
                      "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}
    result = DlockRunner({**site_s3.env, **no_credentials})("status", site_s3.new_dataset())
    assert result.code == 4, result
    assert "no credentials" in result.err and "AWS_ACCESS_KEY_ID" in result.err
    assert "GOOGLE" not in result.err and "Traceback" not in result.err


# -- Azure: credentials and the probe -----------------------------------------------------------


def test_a_wrong_azure_key_exits_4_with_a_sentence_and_never_prints_it(site_azure: Site, azurite_endpoint: str):
    wrong = "d3Jvbmcta2V5LWFsc28tbm90LXByaW50ZWQ="
    cli = DlockRunner({"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(azurite_endpoint, key=wrong)})
    result = cli("acquire", site_azure.new_dataset(), "--timeout", "0")
    assert result.code == 4, result
    assert "Azure rejected the credentials" in result.err and "AZURE_STORAGE_ACCOUNT_KEY" in result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) <= 2
    assert wrong not in result.err + result.out and azurite.KEY not in result.err + result.out


def test_azure_credentials_as_storage_options(site_azure: Site, azurite_endpoint: str):
    ds = site_azure.new_dataset()
    cli = DlockRunner()
    cli.env.pop("AZURE_STORAGE_CONNECTION_STRING", None)
    option = f"connection_string={azurite.connection_string(azurite_endpoint)}"
    acquired = cli("acquire", ds, "-o", option)
    assert acquired.code == 0, acquired.err
    assert json.loads(cli("status", ds, "-o", option, "--json").out)["state"] == "held"
    assert cli("release", ds, "-o", option, "--token", acquired.out.strip()).code == 0
    nothing = cli("status", ds, env={"AZURE_STORAGE_ACCOUNT_NAME": "", "AZURE_STORAGE_CONNECTION_STRING": ""})
    assert nothing.code == 4 and "no Azure storage account" in nothing.err, nothing


def test_unreachable_azure_endpoint_exits_4_quickly(site_azure: Site):
    closed = f"http://127.0.0.1:{free_port()}"
    cli = DlockRunner({"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(closed)})
    started = time.monotonic()
    result = cli("status", f"{site_azure.root}/ds", timeout=120)
    assert result.code == 4, result
    assert "cannot reach" in result.err and "Traceback" not in result.err
    assert azurite.KEY not in result.err + result.out
    assert time.monotonic() - started < 60


@pytest.fixture
def ignoring_azure_endpoint(azurite_endpoint: str) -> Iterator[str]:
    yield from _stripping_proxy(int(azurite_endpoint.rsplit(":", 1)[1]))


def test_an_azure_endpoint_that_ignores_conditions_falls_back_visibly(site_azure: Site, ignoring_azure_endpoint: str, tmp_path):
    """A SAS token, not a shared key: a key signs the condition headers the proxy drops."""
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(azurite.ACCOUNT, azurite.KEY, ResourceTypes(service=True, container=True, object=True),
                               AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
                               expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
    through_proxy = f"BlobEndpoint={ignoring_azure_endpoint}/{azurite.ACCOUNT};SharedAccessSignature={sas}"
    ds = site_azure.new_dataset()
    cli = DlockRunner({"AZURE_STORAGE_CONNECTION_STRING": through_proxy, "XDG_CACHE_HOME": str(tmp_path)})
    acquired = cli("acquire", ds)
    assert acquired.code == 0, acquired.err
    assert "ignores Azure conditional writes" in acquired.err
    assert json.loads(cli("status", ds, "--json").out)["targets"][0]["atomic"] is False
    assert cli("acquire", ds).code == 1  # the verify protocol still sees the holder
    direct = DlockRunner({**site_azure.env, "XDG_CACHE_HOME": str(tmp_path)})
    assert json.loads(direct("status", ds, "--json").out)["targets"][0]["atomic"] is True, "Azurite itself honours them"


def test_abfss_urls_with_the_account_in_the_host_name_the_container_and_show_as_given():
    from dlock.stores.azure import open_store

    store, path = open_store("abfss://lake@acct.dfs.core.windows.net/team/ds", {"account_key": azurite.KEY})
    assert path == "lake/team/ds"
    assert store.url(store.join(path, "dataset_lock.lock")) == "abfss://lake@acct.dfs.core.windows.net/team/ds/dataset_lock.lock"
    assert store.atomic, "Azure itself is trusted without a probe"
