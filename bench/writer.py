"""Linearised writer sessions per second per backend at 1, 2, 4 and 8 processes, the
in-process cost of acquire+release on local disk and memory against Deep Lake's local lock,
and what the ownership check before each write costs per store.

    python bench/writer.py [--sessions 25] [--repeats 1] [--runs 200] [--only local memory ...]
    python bench/writer.py --write-cost-only [--writes 200]

A session is `with dlock.writer(ds) as w:` reading a counter file and writing it back
incremented. Workers start together at a common instant (their imports done), so the
figure is sessions / wall time of the contended part only; with --repeats N each cell is
the median of N runs (a run of 100 sessions of one worker lasts a tenth of a second, and
a shared machine moves single runs by a third). Servers run on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import dlock  # noqa: E402
from objectstore import Counting, bucket_on_each, deeplake_cycle, servers  # noqa: E402
from servers.zookeeper import _new_server, _wait_serving  # noqa: E402

WORKER = r"""
import json, sys, time
import dlock
dataset, lock_target, sessions, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
lock_target = None if lock_target == "-" else lock_target
import tempfile
with dlock.writer(tempfile.mkdtemp(), timeout=0, ttl=60) as w:  # dlock's lazy imports, before the clock starts
    w.write_text("warm", "up")
time.sleep(max(0.0, start_at - time.time()))
for _ in range(sessions):
    with dlock.writer(dataset, timeout=-1, ttl=60, lock_target=lock_target) as w:
        document = json.loads(w.read_bytes("counter.json"))
        document["count"] += 1
        w.write_text("counter.json", json.dumps(document))
print(time.time())
"""


ROWS = {"local": "local (processes)", "s3": "s3 (moto) (processes)", "gcs": "gcs (fake-gcs-server) (processes)",
        "zookeeper": "zookeeper lock, local files (processes)", "memory": "memory (threads, one process)"}


def seed(dataset: str) -> None:
    backend = dlock.targets.open_backend(dataset)
    backend.store.write_data(backend.store.join(backend.dataset, "counter.json"), json.dumps({"count": 0}).encode())


def throughput(dataset: str, lock_target: str | None, processes: int, sessions: int) -> float:
    seed(dataset)
    start_at = time.time() + 2.5 + 0.3 * processes
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, dataset, lock_target or "-", str(sessions), str(start_at)],
                              stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    ends = [float(p.communicate()[0]) for p in procs]
    total = processes * sessions
    with dlock.writer(dataset, timeout=30) as w:
        assert json.loads(w.read_bytes("counter.json"))["count"] == total, "lost update"
    return total / (max(ends) - start_at)


def thread_throughput(dataset: str, threads: int, sessions: int) -> float:
    seed(dataset)

    def work() -> None:
        for _ in range(sessions):
            with dlock.writer(dataset, timeout=-1, ttl=60) as w:
                document = json.loads(w.read_bytes("counter.json"))
                document["count"] += 1
                w.write_text("counter.json", json.dumps(document))

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return threads * sessions / (time.perf_counter() - started)


def medians(repeats: int, counts: tuple[int, ...], run: Callable[[int], float]) -> list[float]:
    """The median of `repeats` runs per worker count, the counts interleaved (1, 2, 4, 8, 1, ...)
    so that a slow minute of the machine does not fall on one column only."""
    samples: dict[int, list[float]] = {n: [] for n in counts}
    for _ in range(max(1, repeats)):
        for n in counts:
            samples[n].append(run(n))
    return [statistics.median(samples[n]) for n in counts]


@contextlib.contextmanager
def zookeeper() -> Iterator[str]:
    server = _new_server(Path(tempfile.mkdtemp()), "bench")
    server.start()
    try:
        assert _wait_serving([server])
        yield server.address
    finally:
        server.stop()


def acquire_release_ms(target: str, runs: int) -> float:
    dlock.acquire(target).release()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        dlock.acquire(target).release()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def write_cost_ms(dataset: str, writes: int) -> tuple[float, float]:
    """(median ms of w.write_bytes, median ms of the same write without the ownership check):
    the difference is the one read of the lock that confirms it is still ours."""
    data = b"x" * 1024
    seed(dataset)  # the dataset must exist: the writer creates none
    with dlock.writer(dataset, timeout=30) as w:
        store, base = w._store, w._dataset
        checked, bare = [], []
        for i in range(writes):
            started = time.perf_counter()
            w.write_bytes(f"cost/{i % 8}", data)
            checked.append(time.perf_counter() - started)
            started = time.perf_counter()
            store.write_data(store.join(base, "cost", str(i % 8)), data)
            bare.append(time.perf_counter() - started)
    return statistics.median(checked) * 1000, statistics.median(bare) * 1000


def write_costs(sites: list[tuple[str, str]], writes: int) -> list[tuple[str, float, float]]:
    return [(name, *write_cost_ms(dataset, writes)) for name, dataset in sites]


def print_write_costs(costs: list[tuple[str, float, float]]) -> None:
    print("| store | write_bytes (confirmed) | bare write | ownership check |")
    print("|---|---|---|---|")
    for name, checked, bare in costs:
        print(f"| {name} | {checked:.2f} ms | {bare:.2f} ms | {checked - bare:+.2f} ms |")


def cost_sites(local: str, bucket: str) -> list[tuple[str, str]]:
    return [("local", local), ("s3 (moto)", f"s3://{bucket}/cost"), ("gcs (fake-gcs-server)", f"gs://{bucket}/cost")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=25, help="sessions per worker")
    parser.add_argument("--repeats", type=int, default=1, help="runs per cell; the median is printed")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--writes", type=int, default=200, help="writes per store for the ownership-check cost")
    parser.add_argument("--write-cost-only", action="store_true", help="measure only the ownership check per write")
    parser.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS), help="throughput rows to measure")
    args = parser.parse_args()
    if args.write_cost_only:
        with servers() as endpoints:
            bucket = bucket_on_each(endpoints)
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
                  f"medians of {args.writes} writes of 1 KiB")
            print_write_costs(write_costs(cost_sites(tempfile.mkdtemp(), bucket), args.writes))
        return
    counts = (1, 2, 4, 8)
    rows: list[tuple[str, list[float]]] = []
    local = tempfile.mkdtemp()
    from fsspec.implementations.memory import MemoryFileSystem

    MemoryFileSystem().mkdir("/bench-ds")
    with servers() as endpoints, zookeeper() as zk_hosts:
        bucket = bucket_on_each(endpoints)
        sites = {"local": (local, None), "s3": (f"s3://{bucket}/ds", None), "gcs": (f"gs://{bucket}/ds", None),
                 "zookeeper": (local, f"zk://{zk_hosts}/bench/writer")}
        for key, (dataset, lock_target) in sites.items():
            if key in args.only:
                rows.append((ROWS[key], medians(args.repeats, counts, lambda n: throughput(dataset, lock_target, n, args.sessions))))
        if "memory" in args.only:
            rows.append((ROWS["memory"], medians(args.repeats, counts, lambda n: thread_throughput("memory://bench-ds", n, args.sessions))))
        local_ms = acquire_release_ms(local, args.runs)
        memory_ms = acquire_release_ms("memory://bench-ds", args.runs)
        costs = write_costs(cost_sites(local, bucket), args.writes)  # s3fs caches its filesystem: same servers
    backend = dlock.targets.open_backend(local)
    counter = Counting(backend.store)
    lock_path = os.path.join(local, "dataset_lock.lock")
    deeplake = []
    for _ in range(20):
        started = time.perf_counter()
        deeplake_cycle(counter, lock_path, 0.01)
        deeplake.append(time.perf_counter() - started)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.sessions} sessions per worker, median of {max(1, args.repeats)} runs per cell")
    print("| backend | 1 | 2 | 4 | 8 |")
    print("|---|---|---|---|---|")
    for name, values in rows:
        print(f"| {name} | " + " | ".join(f"{v:.0f}/s" for v in values) + " |")
    print()
    print("| in-process acquire+release | median |")
    print("|---|---|")
    print(f"| dlock.acquire().release(), local disk | {local_ms:.2f} ms |")
    print(f"| dlock.acquire().release(), memory:// | {memory_ms:.2f} ms |")
    print(f"| Deep Lake 3 local lock protocol (write, sleep 0.01 s, verify, delete) | {statistics.median(deeplake) * 1000:.1f} ms |")
    print()
    print_write_costs(costs)


if __name__ == "__main__":
    main()
