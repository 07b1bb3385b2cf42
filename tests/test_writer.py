"""dlock.writer under contention on every backend: exact counts, no lost or duplicated
update, no torn file; with workers SIGKILLed mid-session; and after a forced release."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

import dlock
from conftest import TESTS, Site

WORKERS = 8
SESSIONS = int(os.environ.get("DLOCK_TEST_WRITER_SESSIONS", "50"))


def start_workers(dataset: str, lock_target: str | None, sessions: int, ttl: float, log: Path, env: dict[str, str]):  # type: ignore[no-untyped-def]
    script = str(TESTS / "helpers" / "writer_worker.py")
    return [
        subprocess.Popen([sys.executable, script, dataset, lock_target or "-", str(sessions), str(ttl), str(log), f"w{i}"],
                         env=env, stderr=subprocess.PIPE, text=True)
        for i in range(WORKERS)
    ]


def read_counter(dataset: str, **options: object) -> dict:  # type: ignore[type-arg]
    with dlock.writer(dataset, timeout=30, **options) as w:  # type: ignore[arg-type]
        return json.loads(w.read_bytes("counter.json"))


def seed(site: Site) -> str:
    ds = site.new_dataset()
    site.put(f"{ds}/counter.json", json.dumps({"count": 0, "sessions": []}).encode())
    return ds


def check(document: dict, completed: list[str]) -> None:  # type: ignore[type-arg]
    sessions = document["sessions"]
    assert document["count"] == len(sessions), "count and session list disagree: a torn or lost write"
    assert len(set(sessions)) == len(sessions), "a session's update was applied twice"
    assert set(completed) <= set(sessions), "a completed session's update was lost"


def test_eight_writer_processes_lose_no_update(site: Site, tmp_path, dlock_cli):
    ds = seed(site)
    log = tmp_path / "completed.log"
    procs = start_workers(ds, None, SESSIONS, 30, log, dlock_cli.env)
    errors = [p.stderr.read() for p in procs if p.wait(timeout=900) != 0]
    assert not errors, errors[0][-3000:]
    document = read_counter(ds)
    completed = log.read_text().split()
    assert document["count"] == WORKERS * SESSIONS == len(completed)
    check(document, completed)


def test_writer_processes_survive_sigkilled_peers(site: Site, tmp_path, dlock_cli):
    ds = seed(site)
    log = tmp_path / "completed.log"
    procs = start_workers(ds, None, 10, 2, log, dlock_cli.env)  # ttl 2 s: a dead holder's lock expires fast
    victims = random.Random(7).sample(procs, 3)
    time.sleep(3)
    for victim in victims:
        victim.send_signal(signal.SIGKILL)
    survivors = [p for p in procs if p not in victims]
    errors = [p.stderr.read() for p in survivors if p.wait(timeout=600) != 0]
    assert not errors, errors[0][-3000:]
    for victim in victims:
        victim.wait()
    document = read_counter(ds)
    completed = log.read_text().split()
    check(document, completed)
    assert len(completed) >= 5 * 10, "every survivor finished all its sessions"


def test_memory_writers_in_threads_lose_no_update():
    from fsspec.implementations.memory import MemoryFileSystem

    name = f"ds-{uuid.uuid4().hex[:8]}"
    MemoryFileSystem().pipe_file(f"/{name}/counter.json", json.dumps({"count": 0, "sessions": []}).encode())
    ds = f"memory://{name}"
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for number in range(SESSIONS):
                with dlock.writer(ds, timeout=-1, ttl=30) as w:
                    document = json.loads(w.read_bytes("counter.json"))
                    document["count"] += 1
                    document["sessions"].append(f"t{index}-{number}")
                    time.sleep(0.0005)
                    w.write_text("counter.json", json.dumps(document))
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not failures, failures[0]
    document = read_counter(ds)
    assert document["count"] == WORKERS * SESSIONS
    check(document, document["sessions"])


def test_a_writer_whose_lock_was_forced_away_writes_nothing_more_at_the_default_ttl(site: Site, dlock_cli):
    ds = seed(site)
    with pytest.raises(dlock.LockLost):  # leaving the block says the lock was lost
        with dlock.writer(ds, timeout=5) as w:
            w.write_text("before.txt", "ok")
            assert dlock_cli("release", ds, "--force", "--yes").code == 0
            # The very next write confirms ownership first: no refresh (120 s away) needed.
            with pytest.raises(dlock.LockLost):
                w.write_text("after.txt", "must not land")
            assert w.lease.lost
            with pytest.raises(dlock.LockLost):
                w.delete("before.txt")
    assert site.get(f"{ds}/after.txt") is None
    assert site.get(f"{ds}/before.txt") == b"ok"


def test_a_writer_whose_lock_was_taken_over_writes_nothing_more(site: Site, dlock_cli):
    ds = seed(site)
    with pytest.raises(dlock.LockLost):
        with dlock.writer(ds, timeout=5) as w:
            w.write_text("before.txt", "ok")
            assert dlock_cli("release", ds, "--force", "--yes").code == 0
            assert dlock_cli("acquire", ds).code == 0  # someone else holds it now
            with pytest.raises(dlock.LockLost):  # "removed" or "taken over": whichever was seen first
                w.write_bytes("after.bin", b"must not land")
    assert site.get(f"{ds}/after.bin") is None


def test_writer_refuses_paths_outside_the_dataset_and_the_lock_files(site_local):
    ds = site_local.new_dataset()
    with dlock.writer(ds, timeout=5) as w:
        for bad in ("../escape", "/etc/passwd", "a/../../b", "", "dataset_lock.lock",
                    "versions/abc/dataset_lock.lock", "queries.lock", "./x"):
            with pytest.raises(dlock.UsageError):
                w.write_bytes(bad, b"x")
        w.write_bytes("tensors/x/chunks/0001", b"data")
        assert w.read_bytes("tensors/x/chunks/0001") == b"data"
    assert not (Path(ds).parent / "escape").exists()


def test_writer_on_a_missing_dataset_creates_nothing(tmp_path):
    with pytest.raises(dlock.NotFound):
        with dlock.writer(str(tmp_path / "missing"), timeout=0):
            pass
    assert not (tmp_path / "missing").exists()


def test_writer_with_a_zookeeper_lock_and_local_files(zookeeper, site_local, tmp_path, local_cli):
    ds = seed(site_local)
    lock_target = f"zk://{zookeeper.address}/locks/writer-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "completed.log"
    procs = start_workers(ds, lock_target, 10, 30, log, local_cli.env)
    errors = [p.stderr.read() for p in procs if p.wait(timeout=600) != 0]
    assert not errors, errors[0][-3000:]
    document = json.loads(Path(ds, "counter.json").read_text())
    assert document["count"] == WORKERS * 10
    check(document, log.read_text().split())
    assert not Path(ds, "dataset_lock.lock").exists(), "the lock lived in ZooKeeper"
