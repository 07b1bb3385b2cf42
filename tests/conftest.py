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
from typing import Callable

import pytest

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures" / "deeplake3"
sys.path.insert(0, str(TESTS))
pytest.register_assert_rewrite("servers")

pytest_plugins = [f"servers.{p.stem}" for p in sorted((TESTS / "servers").glob("*.py")) if p.stem != "__init__"]
SITES = ["local"] + [name for plugin in pytest_plugins for name in getattr(importlib.import_module(plugin), "SITES", [])]
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
