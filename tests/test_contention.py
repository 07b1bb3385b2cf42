"""Mutual exclusion under real contention: 8 processes, read-increment-write, zero lost updates."""

from __future__ import annotations

import subprocess
import sys

from conftest import TESTS, Site, dlock_executable

WORKERS, ROUNDS = 8, 5


def test_eight_processes_under_dlock_run_lose_no_update(site: Site, dlock_cli):
    ds = site.new_dataset()
    counter = f"{ds}/counter.txt"
    site.put(counter, b"0")
    worker = (
        f"for i in $(seq {ROUNDS}); do "
        f"{' '.join(dlock_executable())} run {ds} --timeout -1 -- {sys.executable} {TESTS / 'helpers' / 'counter.py'} {counter} "
        "|| exit 1; done"
    )
    procs = [subprocess.Popen(["sh", "-c", worker], env=dlock_cli.env, stderr=subprocess.PIPE, text=True) for _ in range(WORKERS)]
    failures = [p.stderr.read() for p in procs if p.wait(timeout=300) != 0]
    assert not failures, failures
    assert int(site.get(counter)) == WORKERS * ROUNDS
