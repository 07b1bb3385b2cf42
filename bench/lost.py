"""How long a job under `dlock run` writes on after its lock is forced away: from the moment
`release --force` has removed the lock to the moment the command receives SIGTERM.

    python bench/lost.py [--tries 10] [--check-interval 1]

Each try starts `dlock run DS --grace 1 -- python -c CHILD` at the default ttl (300 s, so
the next refresh is two minutes away), waits until the child runs and then a random 0-2 s
(any phase of the check interval), removes the lock with
the API's force release, and reads the instant the child got SIGTERM. Local disk and S3
(moto server on loopback).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import dlock  # noqa: E402
from objectstore import bucket_on_each, servers  # noqa: E402
from writer import seed  # noqa: E402

CHILD = r"""
import signal, sys, time
out = sys.argv[1]
def stop(signum, frame):
    open(out, "a").write(f"term {time.time()}\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(out, "a").write("ready\n")
time.sleep(120)
"""


def one_try(dataset: str, check_interval: str, log: Path) -> float:
    log.write_text("")
    runner = subprocess.Popen([sys.executable, "-m", "dlock", "run", dataset, "--grace", "1", "--check-interval",
                               check_interval, "--", sys.executable, "-c", CHILD, str(log)],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.DEVNULL)
    try:
        while "ready" not in log.read_text():
            assert runner.poll() is None, "dlock run ended before its command started"
            time.sleep(0.01)
        time.sleep(random.uniform(0, 2))  # force at any phase of the check interval
        dlock.release(dataset, force=True)
        forced = time.time()
        assert runner.wait(timeout=60) == 3, "run must exit 3 when its lock is lost"
        term = next(line for line in log.read_text().splitlines() if line.startswith("term "))
        return float(term.split()[1]) - forced
    finally:
        if runner.poll() is None:
            runner.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--check-interval", default="1")
    args = parser.parse_args()
    log = Path(tempfile.mkdtemp()) / "child.log"
    with servers() as endpoints:
        bucket = bucket_on_each(endpoints)
        sites = [("local", tempfile.mkdtemp()), ("s3 (moto)", f"s3://{bucket}/lost")]
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
              f"ttl 300 s, --check-interval {args.check_interval}, {args.tries} tries")
        print("| store | release --force -> SIGTERM, median | min | max |")
        print("|---|---|---|---|")
        for name, dataset in sites:
            seed(dataset)
            delays = [one_try(dataset, args.check_interval, log) for _ in range(args.tries)]
            print(f"| {name} | {statistics.median(delays):.2f} s | {min(delays):.2f} s | {max(delays):.2f} s |")


if __name__ == "__main__":
    main()
