"""Timing helpers the latency benchmarks share."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from typing import Callable


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def cycles(runs: int, cycle: Callable[[], None]) -> float:
    """Median milliseconds of `cycle`, after one warm-up call."""
    cycle()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        cycle()
        samples.append(time.perf_counter() - started)
    return median_ms(samples)


def handoff_seconds(waiter: subprocess.Popen[str], release: Callable[[], None]) -> float:
    """Release at t0; the waiting process prints the time it holds the lock (t1): t1 - t0."""
    assert waiter.stdout is not None
    released = time.time()
    release()
    acquired = float(waiter.stdout.readline())
    waiter.wait()
    return acquired - released


def latency_arguments(handoffs: int = 30) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--handoffs", type=int, default=handoffs)
    return parser.parse_args()


def print_table(machine: str, rows: list[tuple[str, str, float]]) -> None:
    """A README table: measure, client, median ms."""
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {machine}")
    print("| measure | client | median |")
    print("|---|---|---|")
    for measure, client, value in rows:
        print(f"| {measure} | {client} | {value:.1f} ms |")
