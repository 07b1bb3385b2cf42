"""`list`/`clean` over 10,000 datasets (1,000 locked, 300 of them stale): datasets per
second and store requests, dlock's concurrent walk against a one-request-at-a-time walk.

    python bench/fleet.py --sites local s3 [--datasets 10000]

S3 runs against a moto server this script starts on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlock import fleet  # noqa: E402
from dlock.backends import tree  # noqa: E402
from dlock.stores.base import Store  # noqa: E402
from dlock.targets import open_backend  # noqa: E402
from dlock.api import options  # noqa: E402


class Counting:
    """Wraps a Store and counts the calls that each cost one request (or syscall batch)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.requests = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        attribute = getattr(self._store, name)
        if name in ("scan", "list_tree", "read", "delete", "is_dir"):
            def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
                self.requests += 1
                return attribute(*args, **kwargs)
            return counted
        return attribute


def lock_bytes(expiry: float) -> bytes:
    return (0x02FC00000001).to_bytes(6, "little") + struct.pack("<d", expiry) + (4242).to_bytes(4, "little")


def layout(n: int) -> Iterator[tuple[str, bytes]]:
    """n datasets in 100 team folders; every 10th locked, 300 of those stale."""
    now = time.time()
    locked = 0
    for i in range(n):
        ds = f"team{i % 100:03d}/ds{i:05d}"
        yield f"{ds}/dataset_meta.json", b"{}"
        if i % 10 == 0:
            expiry = now - 3600 if locked < 300 else now + 3600
            locked += 1
            yield f"{ds}/dataset_lock.lock", lock_bytes(expiry)


def populate_local(root: str, n: int) -> None:
    for rel, data in layout(n):
        path = Path(root, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def run_site(name: str, n: int, storage: dict[str, str], prepare) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Both walks on a freshly populated root each (prepare() returns it), so clean finds the same 300."""
    rows = []
    modes = (
        ("baseline: a listing per directory, one request at a time", 1, False),
        (f"dlock: a page per folder where it fits, {tree.CONCURRENCY} in flight", None, True),
    )
    for label, concurrency, flat in modes:
        root = prepare()
        backend = open_backend(root, options(storage_options=storage))
        backend.store.lists_trees = backend.store.lists_trees and flat
        counter = Counting(backend.store)
        backend.store = counter  # type: ignore[assignment]
        started = time.perf_counter()
        report = backend.scan(depth=8, concurrency=concurrency)
        listed = time.perf_counter() - started
        list_requests = counter.requests
        chosen = fleet.removable(report)
        started = time.perf_counter()
        results = backend.remove_found(chosen, concurrency=concurrency)
        cleaned = time.perf_counter() - started
        assert report.datasets == n, (report.datasets, n)
        assert len(report.locks) == n // 10 and len(chosen) == 300, (len(report.locks), len(chosen))
        assert all(r.outcome == "removed" for r in results)
        rows.append((name, label, n, listed, n / listed, list_requests, cleaned, counter.requests - list_requests))
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--sites", nargs="+", default=["local", "s3"])
    args = parser.parse_args()
    n = args.datasets
    rows = []
    if "local" in args.sites:
        tmp = tempfile.mkdtemp()
        try:
            root = os.path.join(tmp, "lake")

            def prepare_local() -> str:
                shutil.rmtree(root, ignore_errors=True)
                populate_local(root, n)
                return root

            rows += run_site("local", n, {}, prepare_local)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if "s3" in args.sites:
        with moto_server() as endpoint:
            os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
            import boto3
            from concurrent.futures import ThreadPoolExecutor

            client = boto3.client("s3", endpoint_url=endpoint)

            def prepare_s3() -> str:
                bucket = f"lake-{uuid.uuid4().hex[:8]}"
                client.create_bucket(Bucket=bucket)
                with ThreadPoolExecutor(16) as pool:
                    list(pool.map(lambda item: client.put_object(Bucket=bucket, Key=item[0], Body=item[1]), layout(n)))
                return f"s3://{bucket}"

            rows += run_site("s3 (moto)", n, {"endpoint_url": endpoint}, prepare_s3)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| store | walk | datasets | list s | datasets/s | list requests | clean 300 s | clean requests |")
    print("|---|---|---|---|---|---|---|---|")
    for store, label, count, listed, rate, requests, cleaned, clean_requests in rows:
        print(f"| {store} | {label} | {count} | {listed:.2f} | {rate:.0f} | {requests} | {cleaned:.2f} | {clean_requests} |")


if __name__ == "__main__":
    main()
