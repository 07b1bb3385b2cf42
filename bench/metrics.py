"""What `--format prometheus` costs over a plain `list --json`: the real dlock process on a local
tree of 10,000 datasets (1,000 locked, 700 of them held), and the metrics built in-process.

    python bench/metrics.py [--datasets 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet import populate_local  # noqa: E402  (bench/fleet.py: the same tree as the fleet bench)

from dlock import api, metrics  # noqa: E402
from dlock.model import State  # noqa: E402


def timed(argv: list[str], runs: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    try:
        lake = os.path.join(tmp, "lake")
        populate_local(lake, args.datasets)
        output = os.path.join(tmp, "dlock.prom")
        dlock = [sys.executable, "-m", "dlock", "list", lake]
        listed = timed([*dlock, "--json"], args.runs)
        exported = timed([*dlock, "--format", "prometheus", "--output", output], args.runs)
        report = api.scan_locks(lake)
        started = time.perf_counter()
        document = metrics.exposition(lake, report, duration=0.0)
        built = time.perf_counter() - started
        held = report.count(State.HELD)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"{args.datasets} datasets, {len(report.locks)} locks ({held} held); median of {args.runs} runs")
        print(f"dlock list --json:                          {listed:.2f} s")
        print(f"dlock list --format prometheus --output F:  {exported:.2f} s")
        print(f"metrics built in-process from the report:   {built * 1000:.0f} ms, {len(document):,} bytes")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
