"""Many targets in one `dlock status` / `dlock wait`, wall time:
- N unreachable ZooKeeper targets (closed loopback ports, each waits out --zk-timeout) in
  one `status`, beside the serial sum;
- N free lock nodes on a standalone ZooKeeper on loopback (each target opens its own
  session) in one `status` and one `wait`;
- N free datasets in an S3 bucket (moto on loopback) in one `status` and one `wait`.

    python bench/targets.py [--count 200] [--zk-timeout 0.5] [--before /path/to/other/checkout]

--before times the same commands from another checkout (e.g. a worktree of main).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))

from objectstore import bucket_on_each, servers  # noqa: E402
from servers.zookeeper import _new_server, _wait_serving  # noqa: E402


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(tree: Path, argv: list[str]) -> tuple[float, int]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dlock", *argv], cwd=tree, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--zk-timeout", default="0.5")
    parser.add_argument("--before", type=Path, help="another checkout of dlock (e.g. main), timed the same way")
    args = parser.parse_args()
    port = closed_port()
    targets = [f"zk://127.0.0.1:{port}/locks/t{i}" for i in range(args.count)]
    options = ["--zk-timeout", args.zk_timeout]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.count} unreachable ZooKeeper targets, --zk-timeout {args.zk_timeout} "
          f"(serial sum {args.count * float(args.zk_timeout):.0f} s)")
    trees = [("this", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    print("| checkout | command | wall time | exit |")
    print("|---|---|---|---|")
    for label, tree in trees:
        seconds, code = timed(tree, ["status", *targets, *options])
        print(f"| {label} | `dlock status <{args.count} unreachable zk:// targets>` | {seconds:.1f} s | {code} |")
    server = _new_server(Path(tempfile.mkdtemp()), "bench")
    server.start()
    try:
        assert _wait_serving([server]), "ZooKeeper did not start (scripts/install-system-deps.sh installs it)"
        free = [f"zk://{server.address}/locks/free{i}" for i in range(args.count)]
        for label, tree in trees:
            for verb in ("status", "wait"):
                seconds, code = timed(tree, [verb, *free])
                print(f"| {label} | `dlock {verb} <{args.count} free zk:// targets>` | {seconds:.1f} s | {code} |")
    finally:
        server.stop()
    with servers() as endpoints:
        import boto3

        bucket = bucket_on_each(endpoints)  # the environment points dlock at moto
        s3 = boto3.client("s3")
        datasets = [f"ds{i}" for i in range(args.count)]
        for name in datasets:
            s3.put_object(Bucket=bucket, Key=f"{name}/dataset_meta.json", Body=b"{}")
        for label, tree in trees:
            for verb in ("status", "wait"):
                seconds, code = timed(tree, [verb, *(f"s3://{bucket}/{name}" for name in datasets)])
                print(f"| {label} | `dlock {verb} <{args.count} free s3:// targets (moto)>` | {seconds:.1f} s | {code} |")


if __name__ == "__main__":
    main()
