"""What a fencing number costs on lock files: acquire+release with and without reading the
fence, on local disk, S3 (moto), GCS (fake-gcs-server) and Azure (Azurite), in the same run. ZooKeeper's
fence is the node's czxid and Redis's an INCR inside the acquire script: no extra request.
Requests are store calls (one HTTP request each, as counted by bench/objectstore.py's Counting).

    python bench/fence.py [--runs 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from objectstore import Counting, bucket_on_each, measure, new_dataset, servers  # noqa: E402


def plain(backend: Any) -> None:
    backend.try_acquire(ttl=300, note="bench").release()


def fenced(backend: Any) -> None:
    handle = backend.try_acquire(ttl=300, note="bench")
    handle.fence()
    handle.release()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    rows = []
    with servers() as endpoints:
        bucket = bucket_on_each(endpoints)
        for name, root in {"local": tempfile.mkdtemp(), "s3 (moto)": f"s3://{bucket}",
                           "gcs (fake-gcs-server)": f"gs://{bucket}", "azure (Azurite)": f"az://{bucket}"}.items():
            _, backend = new_dataset(root)
            counter = Counting(backend.store)
            backend.store = backend.layout.store = counter  # the layout reads through it too
            for label, cycle in (("acquire+release", plain), ("acquire+fence+release", fenced)):
                median, requests, _ = measure(args.runs, lambda: cycle(backend), counter)
                rows.append((name, label, median, requests))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {args.runs} runs")
    print("| store | cycle | median | requests |")
    print("|---|---|---|---|")
    for name, label, median, requests in rows:
        print(f"| {name} | {label} | {median:.1f} ms | {requests:.1f} |")


if __name__ == "__main__":
    main()
