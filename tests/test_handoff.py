"""Waiters on lock files are woken by the release itself, not by their next poll: inotify
across processes on Linux, the process's own release board between threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import dlock
from dlock.stores import notify

# A wait that ends this far before its delay was woken, not timed out (generous for a loaded machine).
LONG = 30.0


def _woken(wait, act) -> bool:
    """Run `act` in a thread shortly after `wait(LONG)` starts; did the wait end early?"""
    timer = threading.Timer(0.2, act)
    started = time.monotonic()
    timer.start()
    wait(LONG)
    timer.join()
    return time.monotonic() - started < LONG / 2


def _delete_from_another_process(path: Path) -> None:
    subprocess.run([sys.executable, "-c", f"import os; os.unlink({str(path)!r})"], check=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_another_process_deleting_the_lock_file_wakes_the_waiter_but_not_other_files(tmp_path: Path):
    lock = tmp_path / "dataset_lock.lock"
    lock.write_bytes(b"x")
    (tmp_path / "other").write_bytes(b"y")
    watcher = notify.watch_file(str(lock))
    _delete_from_another_process(tmp_path / "other")
    started = time.monotonic()
    watcher.wait(0.5)
    assert time.monotonic() - started >= 0.5
    assert _woken(watcher.wait, lambda: _delete_from_another_process(lock))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_a_release_while_the_waiter_looks_again_is_not_missed(tmp_path: Path):
    lock = tmp_path / "dataset_lock.lock"
    lock.write_bytes(b"x")
    watcher = notify.watch_file(str(lock))
    _delete_from_another_process(lock)  # before the wait begins: it returns at once
    started = time.monotonic()
    watcher.wait(LONG)
    assert time.monotonic() - started < LONG / 2


def test_release_board_wakes_a_thread_waiting_on_that_path_only():
    board = notify.ReleaseBoard()
    present = [True]
    watcher = board.watcher("/ds/dataset_lock.lock", lambda: present[0])
    board.released("/elsewhere/dataset_lock.lock")
    started = time.monotonic()
    watcher.wait(0.3)
    assert time.monotonic() - started >= 0.3

    def release() -> None:
        present[0] = False
        board.released("/ds/dataset_lock.lock")

    assert _woken(watcher.wait, release)


def test_a_waiter_that_finds_the_lock_taken_again_sleeps_on():
    board = notify.ReleaseBoard()
    watcher = board.watcher("/ds/dataset_lock.lock", lambda: True)  # another waiter was quicker
    threading.Timer(0.1, lambda: board.released("/ds/dataset_lock.lock")).start()
    started = time.monotonic()
    watcher.wait(0.5)
    assert time.monotonic() - started >= 0.5


@pytest.mark.parametrize("where", ["local", "memory"])
def test_a_thread_waiting_forever_acquires_when_the_holder_releases(tmp_path: Path, where: str):
    if where == "memory":
        from fsspec.implementations.memory import MemoryFileSystem

        MemoryFileSystem().mkdir(f"/handoff-{tmp_path.name}")
        target = f"memory://handoff-{tmp_path.name}"
    else:
        target = str(tmp_path)
    holder = dlock.acquire(target)
    got: list[dlock.Lease] = []
    waiter = threading.Thread(target=lambda: got.append(dlock.acquire(target, timeout=-1)))
    waiter.start()
    time.sleep(0.3)
    assert not got  # still held
    holder.release()
    waiter.join(timeout=LONG)
    assert got and not got[0].lost
    got[0].release()


def test_a_process_waiting_forever_acquires_when_the_holder_releases(tmp_path: Path):
    holder = dlock.acquire(tmp_path)
    script = "import sys, dlock; dlock.acquire(sys.argv[1], timeout=-1).release(); print('acquired', flush=True)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    waiter = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert waiter.poll() is None  # still waiting
    holder.release()
    assert waiter.communicate(timeout=LONG)[0].strip() == "acquired"
    assert waiter.returncode == 0
