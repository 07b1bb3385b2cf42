"""Hand-off on lock files: a holder releases, a waiter acquires. Median release->acquire
time across processes on local disk, and between threads of one process on local disk
and memory://.

    python bench/handoff.py [--handoffs 30]

The holder keeps the lock a random 0.2-1.2 s after the waiter has started waiting, so a
waiter that polls is caught anywhere in its backoff.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import dlock  # noqa: E402
from timing import handoff_seconds, latency_arguments, median_ms, print_table  # noqa: E402

WAITER = r"""
import sys, time
import dlock
print("ready", flush=True)
lease = dlock.acquire(sys.argv[1], timeout=-1)
print(time.time(), flush=True)
lease.release()
"""


def across_processes(dataset: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        holder = dlock.acquire(dataset)
        waiter = subprocess.Popen([sys.executable, "-c", WAITER, dataset], stdout=subprocess.PIPE, text=True)
        assert waiter.stdout is not None and waiter.stdout.readline().strip() == "ready"
        time.sleep(random.uniform(0.2, 1.2))
        samples.append(handoff_seconds(waiter, holder.release))
    return median_ms(samples)


def between_threads(dataset: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        holder = dlock.acquire(dataset)
        acquired: list[float] = []

        def wait() -> None:
            lease = dlock.acquire(dataset, timeout=-1)
            acquired.append(time.time())
            lease.release()

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(random.uniform(0.2, 1.2))
        released = time.time()
        holder.release()
        waiter.join()
        samples.append(acquired[0] - released)
    return median_ms(samples)


def main() -> None:
    args = latency_arguments(handoffs=30)
    local = tempfile.mkdtemp()
    from fsspec.implementations.memory import MemoryFileSystem

    MemoryFileSystem().mkdir("/bench-handoff")
    rows = [
        ("hand-off across processes", "local disk, dlock.acquire(timeout=-1) waiter", across_processes(local, args.handoffs)),
        ("hand-off between threads", "local disk, dlock.acquire(timeout=-1) waiter", between_threads(local, args.handoffs)),
        ("hand-off between threads", "memory://, dlock.acquire(timeout=-1) waiter",
         between_threads("memory://bench-handoff", args.handoffs)),
    ]
    print_table(f"{args.handoffs} hand-offs each", rows)


if __name__ == "__main__":
    main()
