"""Many targets in one `dlock status`: wall time of N unreachable ZooKeeper
targets (closed loopback ports, each waits out --zk-timeout), beside the serial sum.

    python bench/targets.py [--count 200] [--zk-timeout 0.5] [--before /path/to/other/checkout]

--before times the same command from another checkout (e.g. a worktree of main).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    print("| checkout | command | wall time | exit |")
    print("|---|---|---|---|")
    for label, tree in [("this", ROOT)] + ([("before", args.before.resolve())] if args.before else []):
        seconds, code = timed(tree, ["status", *targets, *options])
        print(f"| {label} | `dlock status <{args.count} targets>` | {seconds:.1f} s | {code} |")


if __name__ == "__main__":
    main()
