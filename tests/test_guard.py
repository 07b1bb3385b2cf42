"""`dlock guard` against real Deep Lake 3.9.52 writers (their own virtualenv, scripts/install-deeplake3.sh).

Deep Lake 3.9 never refreshes its lock, so a writer that outlives the lock's validity is
unprotected. Waiting 300 s per test is out of the question, so each writer here sets
deeplake.constants.DATASET_LOCK_VALIDITY to a few seconds before it opens the dataset
(tests/helpers/dlguard_writer.py); Deep Lake reads it there when it takes the lock. The
guard then either writes its default 300 s at once, or is given a short --validity and
--interval to show that it keeps rewriting.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import TESTS, DlockRunner, Site
from test_deeplake_interop import deeplake_python  # noqa: F401  (the fixture: Deep Lake's interpreter)

HELPERS = TESTS / "helpers"
SHORT = 2.0  # the shortened validity of a Deep Lake writer's lock, in seconds
STORES = ["local", "s3"]
DEEPLAKE_ENV = {**os.environ, "PYTHONPATH": ""}


def deeplake_creds(site: Site) -> dict[str, str] | None:
    """Deep Lake 3.9 takes an S3 endpoint and keys in its creds argument, not from AWS_ENDPOINT_URL."""
    if site.name != "s3":
        return None
    return {"aws_access_key_id": site.env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": site.env["AWS_SECRET_ACCESS_KEY"],
            "endpoint_url": site.env["AWS_ENDPOINT_URL"]}


def make_dataset(python: Path, site: Site, name: str = "ds") -> str:
    """A Deep Lake dataset with a commit, so that its writers lock versions/<head>/."""
    url = f"{site.root.rstrip('/')}/{name}"
    result = subprocess.run([str(python), str(HELPERS / "dlrace_deeplake.py"), "make", url, json.dumps(deeplake_creds(site))],
                            env=DEEPLAKE_ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return url


class DeepLakeWriter:
    """A real Deep Lake process that opened `dataset` for writing (or was refused: `opened`)."""

    def __init__(self, python: Path, site: Site, dataset: str, validity: float = SHORT) -> None:
        self.proc = subprocess.Popen(
            [str(python), str(HELPERS / "dlguard_writer.py"), dataset, str(validity), json.dumps(deeplake_creds(site))],
            env=DEEPLAKE_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        self.pid = self.proc.pid
        self.opened = self._line()

    def _line(self) -> str:
        return self.proc.stdout.readline().strip()  # type: ignore[union-attr]

    def tell(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self._line()

    def exit(self) -> int:
        self.proc.stdin.close()  # type: ignore[union-attr]
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def writers():
    started: list[DeepLakeWriter] = []
    yield started
    for writer in started:
        writer.kill()


@pytest.fixture
def guards():
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def open_writer(python: Path, site: Site, dataset: str, writers: list[DeepLakeWriter], validity: float = SHORT) -> DeepLakeWriter:
    writer = DeepLakeWriter(python, site, dataset, validity)
    writers.append(writer)
    return writer


def start_guard(cli: DlockRunner, guards: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    proc = cli.popen("guard", *args, "--json")
    guards.append(proc)
    return proc


def next_event(guard: subprocess.Popen[str], wanted: str) -> dict[str, object]:
    """Read the guard's JSON lines until an event named `wanted`."""
    for line in guard.stdout:  # type: ignore[union-attr]
        event = json.loads(line)
        if event["event"] == wanted:
            return event
    raise AssertionError(f"the guard ended (exit {guard.wait()}) before {wanted!r}: {guard.stderr.read()}")  # type: ignore[union-attr]


def events_until_exit(guard: subprocess.Popen[str]) -> list[dict[str, object]]:
    out, _ = guard.communicate(timeout=60)
    return [json.loads(line) for line in out.splitlines()]


def lock_of(cli: DlockRunner, dataset: str) -> dict[str, object] | None:
    target = json.loads(cli("status", dataset, "--json").out)["targets"][0]
    return next((lock for lock in target["locks"] if lock["path"] == target["lock_path"] and lock["state"] != "absent"), None)


def wait_until_stale(cli: DlockRunner, dataset: str, pid: int) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lock = lock_of(cli, dataset)
        assert lock is not None and lock["holder"]["pid"] == pid  # type: ignore[index]
        if lock["state"] == "stale":
            return lock
        time.sleep(0.3)
    raise AssertionError(f"the lock of Deep Lake pid {pid} never expired")


@pytest.mark.parametrize("store", STORES)
def test_without_guard_a_second_deeplake_writer_takes_over_a_live_writer_whose_lock_expired(
    deeplake_python, request, writers, store  # noqa: F811
):
    """The bug guard exists for: Deep Lake 3.9 does not refresh, so a live writer loses its lock."""
    site = request.getfixturevalue(f"site_{store}")
    cli = DlockRunner(site.env)
    dataset = make_dataset(deeplake_python, site)
    first = open_writer(deeplake_python, site, dataset, writers)
    assert first.opened == "writable"
    assert "still running but its lock expired" in wait_until_stale(cli, dataset, first.pid)["warning"]  # type: ignore[operator]
    second = open_writer(deeplake_python, site, dataset, writers)
    assert second.opened == "writable", "both Deep Lake processes now believe they hold the dataset"
    assert first.proc.poll() is None


@pytest.mark.parametrize("store", STORES)
def test_guard_protects_a_live_deeplake_writer_past_its_validity_and_exits_0_after_it_closes(
    deeplake_python, request, writers, guards, store  # noqa: F811
):
    site = request.getfixturevalue(f"site_{store}")
    cli = DlockRunner(site.env)
    dataset = make_dataset(deeplake_python, site)
    first = open_writer(deeplake_python, site, dataset, writers)
    assert first.opened == "writable"
    stale = wait_until_stale(cli, dataset, first.pid)  # the case `status` warns about

    guard = start_guard(cli, guards, dataset)  # Deep Lake's own schedule: 300 s now, every 120 s
    assert next_event(guard, "guarding")["pid"] == first.pid
    refreshed = next_event(guard, "refreshed")
    assert refreshed["expires_at"] > time.time() + 250  # type: ignore[operator]
    lock = lock_of(cli, dataset)
    assert lock is not None and lock["state"] == "held" and lock["format"] == "deeplake-3.9"
    assert lock["holder"] == stale["holder"], "the same node id and pid tag: still Deep Lake's own lock"

    second = open_writer(deeplake_python, site, dataset, writers)
    assert second.opened == "LockedException"
    assert first.tell("append") == "3", "Deep Lake still writes under the lock it takes for its own"
    assert first.tell("close") == "closed"
    events = events_until_exit(guard)
    assert guard.returncode == 0
    assert events[-1]["event"] == "released"
    assert lock_of(cli, dataset) is None, "Deep Lake removed the rewritten lock as its own"
    assert open_writer(deeplake_python, site, dataset, writers).opened == "writable"


def test_guard_rewrites_every_interval_and_stops_when_the_writer_exits(deeplake_python, site_local, writers, guards):  # noqa: F811
    cli = DlockRunner()
    dataset = make_dataset(deeplake_python, site_local)
    first = open_writer(deeplake_python, site_local, dataset, writers)
    guard = start_guard(cli, guards, dataset, "--pid", str(first.pid), "--validity", "4s", "--interval", "1s",
                        "--check-interval", "0.2s")
    next_event(guard, "guarding")
    time.sleep(2 * 4 + 1)  # past several of Deep Lake's (shortened) validities and two of the guard's own
    assert open_writer(deeplake_python, site_local, dataset, writers).opened == "LockedException"
    assert first.exit() == 0  # its atexit hook deletes its lock
    events = events_until_exit(guard)
    assert guard.returncode == 0
    refreshes = [event for event in events if event["event"] == "refreshed"]
    assert len(refreshes) >= 3 and refreshes[-1]["refreshes"] >= 5
    assert events[-1]["event"] == "released"
    assert lock_of(cli, dataset) is None


def test_guard_exits_3_and_writes_nothing_when_another_lock_replaces_the_guarded_one(deeplake_python, site_local, writers, guards):  # noqa: F811
    cli = DlockRunner()
    dataset = make_dataset(deeplake_python, site_local)
    first = open_writer(deeplake_python, site_local, dataset, writers)
    guard = start_guard(cli, guards, dataset, "--validity", "3s", "--interval", "1s", "--check-interval", "0.2s")
    path = Path(str(next_event(guard, "refreshed")["path"]))
    foreign = (TESTS / "fixtures" / "deeplake3" / "root.lock").read_bytes()  # another machine's Deep Lake lock
    path.write_bytes(foreign)
    events = events_until_exit(guard)
    assert guard.returncode == 3
    assert events[-1]["event"] == "replaced" and "never writes over a lock it did not see" in str(events[-1]["detail"])
    time.sleep(1.5)  # past the next rewrite the guard would have made
    assert path.read_bytes() == foreign
    assert first.proc.poll() is None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_guard_with_exit_0_and_leaves_the_lock_untouched(deeplake_python, site_local, writers, guards, signum):  # noqa: F811
    cli = DlockRunner()
    dataset = make_dataset(deeplake_python, site_local)
    open_writer(deeplake_python, site_local, dataset, writers)
    guard = start_guard(cli, guards, dataset, "--check-interval", "0.2s")
    path = Path(str(next_event(guard, "refreshed")["path"]))
    before = path.read_bytes()
    time.sleep(0.5)
    guard.send_signal(signum)
    events = events_until_exit(guard)
    assert guard.returncode == 0
    assert events[-1]["event"] == "stopped" and "left as it is" in str(events[-1]["detail"])
    assert path.read_bytes() == before


def test_guard_all_guards_every_live_writer_under_a_tree_and_finds_new_ones(deeplake_python, site_local, writers, guards):  # noqa: F811
    cli = DlockRunner()
    datasets = [make_dataset(deeplake_python, site_local, f"team/{name}") for name in ("a", "b")]
    firsts = [open_writer(deeplake_python, site_local, datasets[0], writers)]
    guard = start_guard(cli, guards, site_local.root, "--all", "--rescan", "0.5s", "--until-idle", "--validity", "4s",
                        "--interval", "1s", "--check-interval", "0.2s")
    assert next_event(guard, "guarding")["pid"] == firsts[0].pid
    firsts.append(open_writer(deeplake_python, site_local, datasets[1], writers))  # found by a rescan
    assert next_event(guard, "guarding")["pid"] == firsts[1].pid
    time.sleep(2 * SHORT + 1)
    for dataset in datasets:
        assert open_writer(deeplake_python, site_local, dataset, writers).opened == "LockedException"
    for first in firsts:
        assert first.exit() == 0
    events = events_until_exit(guard)
    assert guard.returncode == 0, "--until-idle: every writer is done"
    assert sorted(event["pid"] for event in events if event["event"] == "released") == sorted(f.pid for f in firsts)
    assert all(lock_of(cli, dataset) is None for dataset in datasets)


def test_guard_exits_1_when_no_live_deeplake_writer_holds_the_dataset(deeplake_python, site_local, writers):  # noqa: F811
    cli = DlockRunner()
    dataset = make_dataset(deeplake_python, site_local)
    result = cli("guard", dataset)
    assert result.code == 1
    assert "no live Deep Lake writer found" in result.err and "Traceback" not in result.err

    writer = open_writer(deeplake_python, site_local, dataset, writers)
    other = cli("guard", dataset, "--pid", str(writer.pid + 100000))
    assert other.code == 1 and f"with pid {writer.pid + 100000}" in other.err
    writer.kill()  # its lock stays, but its process is gone
    assert lock_of(cli, dataset) is not None
    assert cli("guard", dataset).code == 1


def test_guard_refuses_a_dlock_lock_and_mixed_options(site_local, local_cli):
    dataset = site_local.new_dataset()
    token = local_cli("acquire", dataset).out.strip()
    assert local_cli("guard", dataset).code == 1, "a dlock lock is refreshed by its own holder"
    assert local_cli("release", dataset, "--token", token).code == 0
    assert local_cli("guard", dataset, "--all", "--pid", "1").code == 2
    mixed = local_cli("guard", dataset, "--until-idle")
    assert mixed.code == 2 and "--until-idle goes with --all" in mixed.err
    assert local_cli("guard", dataset, "--validity", "10s", "--interval", "10s").code == 2
    service = local_cli("guard", "redis://user:hunter2@127.0.0.1:1/0/locks/ds")
    assert service.code == 2 and "guard keeps Deep Lake lock files valid" in service.err and "hunter2" not in service.err


def deeplake_lock_of(pid: int, expires_at: float) -> bytes:
    """The 18 bytes a Deep Lake 3.9 process `pid` on this machine writes (deeplake/core/lock.py)."""
    import uuid

    return uuid.getnode().to_bytes(6, "little") + struct.pack("<d", expires_at) + pid.to_bytes(4, "little")


def test_guard_on_a_terminal_shows_a_spinner_and_says_when_the_process_is_gone(site_local):
    """A stand-in process with a Deep Lake lock in its name (the spinner, not Deep Lake, is under test):
    killed, it leaves its lock behind, and guard says so and exits 0 without removing it."""
    import fcntl
    import termios

    from test_terminal import CONTROL_SEQUENCE, _read_until_closed, dlock_executable

    dataset = Path(site_local.new_dataset())
    stand_in = subprocess.Popen(["sleep", "60"])
    try:
        (dataset / "dataset_lock.lock").write_bytes(deeplake_lock_of(stand_in.pid, time.time() - 5))  # expired
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        env.update(TERM="xterm-256color", PYTHONPATH=str(TESTS.parent))
        guard = subprocess.Popen([*dlock_executable(), "guard", str(dataset), "--validity", "4s", "--interval", "1s",
                                  "--check-interval", "0.2s"], stdin=slave, stdout=slave, stderr=slave, env=env,
                                 start_new_session=True)
        os.close(slave)
        time.sleep(3)
        stand_in.kill()
        raw = _read_until_closed(master, deadline=time.monotonic() + 30).decode()
        os.close(master)
        assert guard.wait(timeout=10) == 0
    finally:
        stand_in.kill()
    screen = " ".join(CONTROL_SEQUENCE.sub("", raw).split())  # as read, lines unwrapped
    assert f"guarding Deep Lake pid {stand_in.pid}: " in screen and "rewrites, valid until" in screen
    assert f"Deep Lake pid {stand_in.pid} exited without removing its lock" in screen
    assert (dataset / "dataset_lock.lock").exists(), "a dead writer's lock is left to expire"


def test_the_python_api_guards_until_stopped_and_reports_each_event(tmp_path):
    """dlock.guard.guard_dataset, in process: this test's own pid stands in for the writer."""
    import threading

    from dlock.errors import NothingToGuard, UsageError
    from dlock.guard import GuardEvent, Schedule, guard_dataset

    with pytest.raises(UsageError):
        Schedule(validity=10, interval=10)
    with pytest.raises(UsageError):
        Schedule(validity=10, interval=2, check_interval=5)
    dataset = tmp_path / "ds"
    dataset.mkdir()
    with pytest.raises(NothingToGuard):
        guard_dataset(str(dataset))
    lock = dataset / "dataset_lock.lock"
    lock.write_bytes(deeplake_lock_of(os.getpid(), time.time() + 300))
    events: list[GuardEvent] = []
    stop = threading.Event()

    def stop_after_two_rewrites(event: GuardEvent) -> None:
        events.append(event)
        if event.refreshes == 2:
            stop.set()

    endings = guard_dataset(str(dataset), pid=os.getpid(), schedule=Schedule(3, 0.2, 0.05), stop=stop,
                            on_event=stop_after_two_rewrites)
    assert [event.event for event in events] == ["guarding", "refreshed", "refreshed", "stopped"]
    assert [ending.event for ending in endings] == ["stopped"]
    assert lock.read_bytes() == deeplake_lock_of(os.getpid(), events[2].expires_at)  # type: ignore[arg-type]


@pytest.mark.parametrize("between", ["foreign", "own", "removed"])
def test_a_write_between_the_guards_look_and_its_rewrite_is_never_overwritten(site: Site, between):
    """The rewrite is conditional on the object last seen, on every store: another's lock that
    lands in between ends the guarding untouched, a lock Deep Lake removed stays removed, and
    the writer's own rewrite is adopted."""
    from dlock.api import options
    from dlock.codec import decode
    from dlock.guard import Schedule, WriterGuard
    from dlock.targets import open_backend

    ds = site.new_dataset()
    url = f"{ds}/dataset_lock.lock"
    site.put(url, deeplake_lock_of(os.getpid(), time.time() + 60))
    landed = deeplake_lock_of(os.getpid() if between == "own" else 4242, time.time() + 120)
    with open_backend(ds, options(storage_options=site.storage_options)) as backend:
        store = backend.store
        path = store.join(backend.dataset, "dataset_lock.lock")
        seen = store.read(path)
        assert seen is not None
        guard = WriterGuard(store, ds, path, seen, decode(seen.data), Schedule(10, 1, 0.5))
        replace = store.replace

        def written_over_first(*args):  # type: ignore[no-untyped-def]
            if between == "removed":
                store.delete_data(path)
            else:
                site.put(url, landed)
            return replace(*args)

        store.replace = written_over_first  # type: ignore[method-assign]
        event = guard.step(time.time())
        store.replace = replace  # type: ignore[method-assign]
        if between == "foreign":
            assert event is not None and event.event == "replaced"
            assert site.get(url) == landed
        elif between == "removed":
            assert event is not None and event.event == "released"
            assert site.get(url) is None
        else:
            assert event is None and site.get(url) == landed, "adopted, and rewritten at the next step"
            again = guard.step(time.time())
            assert again is not None and again.event == "refreshed"
            rewritten = decode(site.get(url) or b"")
            assert rewritten.pid == os.getpid() and rewritten.time == decode(landed).time, "never made to expire sooner"
