"""Start-up time of `dlock status ./ds` beside `python -c "import typer"`, medians of N runs.

    python bench/startup.py [--runs 30]
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


def median_ms(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    dlock = shutil.which("dlock") or sys.exit("install dlock first: pip install .")
    with tempfile.TemporaryDirectory() as ds:
        rows = [
            ("python -c pass", median_ms([sys.executable, "-c", "pass"], args.runs)),
            ('python -c "import typer"', median_ms([sys.executable, "-c", "import typer"], args.runs)),
            ("dlock --version", median_ms([dlock, "--version"], args.runs)),
            ("dlock status ./ds (piped)", median_ms([dlock, "status", ds], args.runs)),
            ("dlock status ./ds --json", median_ms([dlock, "status", ds, "--json"], args.runs)),
        ]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, median of {args.runs}")
    print("| command | median wall time |")
    print("|---|---|")
    for name, ms in rows:
        print(f"| `{name}` | {ms:.0f} ms |")


if __name__ == "__main__":
    main()
