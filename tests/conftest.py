"""Shared fixtures: where datasets live (local disk and each server's store) and the real dlock process."""

from __future__ import annotations

import dataclasses
import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures" / "deeplake3"
sys.path.insert(0, str(TESTS))
pytest.register_assert_rewrite("servers")

pytest_plugins = [f"servers.{p.stem}" for p in sorted((TESTS / "servers").glob("*.py")) if p.stem != "__init__"]
SITES = ["local"] + [name for plugin in pytest_plugins for name in getattr(importlib.import_module(plugin), "SITES", [])]
# Every site is a place for lock targets; lock services (ZooKeeper) add their own.
LOCK_TARGETS = SITES + [name for plugin in pytest_plugins for name in getattr(importlib.import_module(plugin), "LOCK_TARGETS", [])]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_unavailable(what: str) -> None:
    """A backend test that cannot start its server fails in CI and skips (loudly) elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} could not start; in CI that is a failure, not a skip.")
    pytest.skip(f"{what} is not available here")


@dataclasses.dataclass
class Site:
    """A place for test datasets: local disk, a bucket on moto, a bucket on fake-gcs-server."""

    name: str
    root: str  # URL or path under which new datasets are made
    env: dict[str, str]  # environment a dlock process needs to reach the store
    storage_options: dict[str, str]
    put: Callable[[str, bytes], None]  # write an object/file at a URL (test setup, not through dlock)
    get: Callable[[str], bytes | None]

    def new_dataset(self, files: dict[str, bytes] | None = None) -> str:
        """A fresh, existing dataset URL (a marker file makes the prefix exist on object stores)."""
        url = f"{self.root.rstrip('/')}/ds-{uuid.uuid4().hex[:10]}"
        self.put(f"{url}/dataset_meta.json", b"{}")
        for name, data in (files or {}).items():
            self.put(f"{url}/{name}", data)
        return url


def _local_put(path: str, data: bytes) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)


def _local_get(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


@pytest.fixture
def site_local(tmp_path: Path) -> Site:
    return Site("local", str(tmp_path), {}, {}, _local_put, _local_get)


@pytest.fixture(params=SITES)
def site(request: pytest.FixtureRequest) -> Site:
    return request.getfixturevalue(f"site_{request.param}")


def dlock_executable() -> list[str]:
    script = Path(sysconfig.get_path("scripts")) / "dlock"
    if script.exists():
        return [str(script)]
    found = shutil.which("dlock")
    return [found] if found else [sys.executable, "-m", "dlock"]


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str


class DlockRunner:
    """Runs the real `dlock` process, as a user would."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        # PYTHONPATH: the process runs the tree under test, even from a git worktree.
        self.env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(TESTS.parent), **(env or {}))
        self.env.pop("DLOCK_ZK_HOSTS", None)

    def __call__(self, *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60) -> Result:
        proc = subprocess.run(
            [*dlock_executable(), *args],
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*dlock_executable(), *args],
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,  # type: ignore[arg-type]
        )


def count_under_dlock_run(cli: DlockRunner, target: str, directory: Path, workers: int = 8, rounds: int = 5,
                          redis_py_lock: tuple[str, str] | None = None) -> int:
    """Workers that each read-increment-write a local counter `rounds` times under `dlock run
    TARGET`; the counter's final value (workers x rounds unless an update was lost). With
    `redis_py_lock` (server URL, key), every second worker holds redis-py's Lock on that key
    instead of running under dlock."""
    counter = directory / "counter.txt"
    counter.write_text("0")
    command = f"{sys.executable} {TESTS / 'helpers' / 'counter.py'} {counter}"
    loop = f"for i in $(seq {rounds}); do dlock run {target} --timeout -1 -- {command} || exit 1; done"
    loops = [["sh", "-c", loop]] * workers
    if redis_py_lock is not None:
        redis_py = [sys.executable, str(TESTS / "helpers" / "redis_py_counter.py"), *redis_py_lock, str(rounds), str(counter)]
        loops[1::2] = [redis_py] * (workers // 2)
    procs = [subprocess.Popen(argv, env=cli.env, stderr=subprocess.PIPE, text=True) for argv in loops]
    failures = [p.stderr.read() for p in procs if p.wait(timeout=300) != 0]
    assert not failures, failures
    return int(counter.read_text())


@pytest.fixture
def dlock_cli(site: Site) -> DlockRunner:
    return DlockRunner(site.env)


@pytest.fixture
def local_cli() -> DlockRunner:
    return DlockRunner()


@pytest.fixture
def deeplake_dataset(tmp_path: Path) -> Path:
    """The real Deep Lake 3.9 dataset with two branches and two leftover locks (fixtures/)."""
    shutil.unpack_archive(FIXTURES / "v3_dataset_after_sigkill.tar.gz", tmp_path)
    return tmp_path / "fx2"


@dataclasses.dataclass
class LockTarget:
    """A fresh lock to contend for: a dataset on a site, or a lock service's lock (a
    ZooKeeper node). The verbs that mean the same everywhere are tested on these."""

    name: str
    url: str
    cli: DlockRunner  # reaches the lock's store or service
    lock_path_end: str  # how status names the lock that acquire takes
    hold_options: tuple[str, ...] = ()  # ("--hold",) where a lock lives only as long as its holder process
    _holders: list[subprocess.Popen[str]] = dataclasses.field(default_factory=list)

    def hold(self, *options: str) -> Holding:
        """The lock, taken by another dlock process."""
        if not self.hold_options:
            taken = self.cli("acquire", self.url, *options)
            assert taken.code == 0, taken.err
            return Holding(self, token=taken.out.strip())
        process = self.cli.popen("acquire", self.url, *self.hold_options, *options)
        self._holders.append(process)
        token = process.stdout.readline().strip() if process.stdout else ""
        assert len(token) == 32, process.stderr.read() if process.poll() is not None and process.stderr else ""
        return Holding(self, token=token, process=process)

    def stop_holders(self) -> None:
        for process in self._holders:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)


@dataclasses.dataclass
class Holding:
    """A lock held by another dlock process: by its token, or by a living `acquire --hold`."""

    target: LockTarget
    token: str
    process: subprocess.Popen[str] | None = None

    def release(self) -> None:
        """Give the lock up as its holder would: `release --token`, or SIGTERM to the holder."""
        if self.process is None:
            released = self.target.cli("release", self.target.url, "--token", self.token)
            assert released.code == 0, released.err
        else:
            self.process.terminate()
            assert self.process.wait(timeout=10) == 0


@pytest.fixture(params=LOCK_TARGETS)
def lock_target(request: pytest.FixtureRequest) -> Iterator[LockTarget]:
    if request.param in SITES:
        site: Site = request.getfixturevalue(f"site_{request.param}")
        target = LockTarget(site.name, site.new_dataset(), DlockRunner(site.env), "dataset_lock.lock")
    else:
        target = request.getfixturevalue(f"lock_target_{request.param}")
    yield target
    target.stop_holders()
