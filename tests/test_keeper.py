"""Kept leases share one scheduling thread: short sessions start no thread of their own,
and a lease kept long enough is still checked and refreshed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dlock


def _threads(name: str) -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == name)


def test_short_sessions_start_no_thread_each(tmp_path: Path):
    for _ in range(50):
        with dlock.lock(tmp_path) as lease:
            assert not lease.lost
    assert _threads("dlock-keeper") == 1
    assert _threads("dlock-refresh") == 0  # nothing came due: a stopped lease is dropped unseen


def test_a_kept_lease_is_refreshed_and_notices_a_forced_release(tmp_path: Path):
    with dlock.lock(tmp_path, ttl=2, check_interval=0.2) as lease:
        first_expiry = lease.expires
        deadline = time.monotonic() + 30
        while lease.expires == first_expiry and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lease.expires > first_expiry  # refreshed at 40 % of the ttl
        lost: list[str] = []
        lease.keep_alive(on_lost=lost.append)
        dlock.release(tmp_path, force=True)
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lost and lease.lost
        try:
            lease.release()
        except dlock.LockLost:
            pass
