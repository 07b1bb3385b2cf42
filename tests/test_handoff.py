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


def _threads(name: str) -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == name)


def _delete_from_another_process(path: Path) -> None:
    subprocess.run([sys.executable, "-c", f"import os; os.unlink({str(path)!r})"], check=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_another_process_deleting_the_lock_file_wakes_the_waiter_but_not_other_files(tmp_path: Path):
    lock = tmp_path / "dataset_lock.lock"
    lock.write_bytes(b"x")
    (tmp_path / "other").write_bytes(b"y")
    watcher = notify.watch_file(str(lock))
    try:
        _delete_from_another_process(tmp_path / "other")
        started = time.monotonic()
        watcher.wait(0.5)
        assert time.monotonic() - started >= 0.5
        assert _woken(watcher.wait, lambda: _delete_from_another_process(lock))
    finally:
        watcher.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_a_release_while_the_waiter_looks_again_is_not_missed(tmp_path: Path):
    lock = tmp_path / "dataset_lock.lock"
    lock.write_bytes(b"x")
    watcher = notify.watch_file(str(lock))
    try:
        _delete_from_another_process(lock)  # before the wait begins: it returns at once
        started = time.monotonic()
        watcher.wait(LONG)
        assert time.monotonic() - started < LONG / 2
    finally:
        watcher.close()


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


# -- the line of waiting processes (local disk, Linux) ------------------------------------

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify and the flock line are Linux's")


def _waiter(target: Path, hold: float, loop: float | None = None) -> subprocess.Popen[str]:
    """A waiting process, returned once it has imported dlock and is about to wait."""
    helper = Path(__file__).parent / "helpers" / "line_waiter.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    args = [sys.executable, str(helper), str(target), str(hold)] + ([str(loop)] if loop is not None else [])
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "waiting"
    return process


def _got(process: subprocess.Popen[str]) -> float:
    assert process.stdout is not None
    line = process.stdout.readline().split()
    assert line and line[0] == "got", line
    return float(line[1])


@linux_only
def test_waiting_processes_take_the_lock_in_the_order_they_came(tmp_path: Path):
    holder = dlock.acquire(tmp_path)
    waiters = []
    for _ in range(3):
        waiters.append(_waiter(tmp_path, hold=0.5))
        time.sleep(0.5)  # its first try failed and it stands in line
    holder.release()
    got = [_got(waiter) for waiter in waiters]
    for waiter in waiters:
        waiter.wait(timeout=LONG)
    assert got == sorted(got), "the first to wait was not the first served"


@linux_only
def test_a_process_looping_short_sessions_does_not_starve_a_waiting_one(tmp_path: Path):
    looper = _waiter(tmp_path, hold=0.005, loop=6.0)
    time.sleep(0.5)  # looping: the lock is free for a moment between its sessions only
    waiter = _waiter(tmp_path, hold=0.1)
    started = time.time()
    waited = _got(waiter) - started
    assert looper.stdout is not None
    looped = looper.stdout.readline().split()
    looper.wait(timeout=LONG)
    waiter.wait(timeout=LONG)
    assert looped[0] == "looped" and int(looped[1]) > 100  # it did loop
    # First in line, it lets the looper come back for 50 ms at most (PATIENCE), then takes
    # its turn; without that it would wait until the looper stops, 6 s.
    assert waited < 1.0, f"the waiting process got its turn only after {waited:.1f} s"


@linux_only
def test_a_waiter_killed_while_first_in_line_passes_its_turn_to_the_next(tmp_path: Path):
    holder = dlock.acquire(tmp_path)
    first = _waiter(tmp_path, hold=0)
    time.sleep(0.5)
    second = _waiter(tmp_path, hold=0)
    time.sleep(3.0)  # the second's own tries are a second apart by now
    first.kill()
    first.wait()
    time.sleep(0.2)
    released = time.time()
    holder.release()
    assert _got(second) - released < 0.5  # woken by the release: first in line once the kernel freed the place
    second.wait(timeout=LONG)


@linux_only
def test_a_process_keeps_no_thread_per_lock_it_once_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(notify.Line, "IDLE", 0.2)
    before = _threads("dlock-line")  # lines of earlier waits in this process, still in use or ending
    for i in range(20):
        lock = tmp_path / f"ds{i}" / "dataset_lock.lock"
        lock.parent.mkdir()
        lock.write_bytes(b"x")
        notify.watch_file(str(lock)).close()
    assert _threads("dlock-line") >= 20
    deadline = time.monotonic() + LONG
    while _threads("dlock-line") > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _threads("dlock-line") <= before
    ours = [notify._line_file(str(tmp_path / f"ds{i}" / "dataset_lock.lock")) for i in range(20)]
    assert not any(os.path.exists(line) for line in ours if line)  # no file left behind in $TMPDIR
    lock = tmp_path / "ds0" / "dataset_lock.lock"  # waiting there again stands in a new line
    watcher = notify.watch_file(str(lock))
    try:
        assert _woken(watcher.wait, lambda: _delete_from_another_process(lock))
    finally:
        watcher.close()
