"""Real Deep Lake 3.9.52 processes (their own virtualenv, scripts/install-deeplake3.sh) against dlock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IN_CI, TESTS

VENV = Path(os.environ.get("DLOCK_DEEPLAKE_VENV", TESTS.parent / ".cache" / "deeplake3-venv"))
PYTHON = VENV / "bin" / "python"

MAKE_DATASET = """
import sys, deeplake
ds = deeplake.empty(sys.argv[1], overwrite=True)
ds.create_tensor("x", htype="generic", dtype="int64")
ds.x.append(1)
ds.commit("first")
ds.x.append(2)
ds.flush()
"""

OPEN_WRITABLE = """
import sys, deeplake
try:
    ds = deeplake.load(sys.argv[1], read_only=False, verbose=False)
except Exception as exc:
    print(type(exc).__name__, flush=True)
else:
    print("writable", flush=True)
    if len(sys.argv) > 2:
        import time; time.sleep(float(sys.argv[2]))
"""


@pytest.fixture(scope="module")
def deeplake_python() -> Path:
    if not PYTHON.exists():
        if IN_CI:
            pytest.fail(f"Deep Lake 3 venv missing at {VENV}; scripts/install-deeplake3.sh makes it.")
        pytest.skip("run scripts/install-deeplake3.sh for the Deep Lake interoperability tests")
    return PYTHON


def deeplake(python: Path, script: str, *args: str) -> str:
    result = subprocess.run([str(python), "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


@pytest.fixture
def dataset(deeplake_python, tmp_path) -> Path:
    path = tmp_path / "ds"
    deeplake(deeplake_python, MAKE_DATASET, str(path))
    return path


def test_deeplake_cannot_open_for_writing_while_dlock_holds_the_head(dataset, deeplake_python, local_cli):
    token = local_cli("acquire", str(dataset)).out.strip()
    assert token
    status = json.loads(local_cli("status", str(dataset), "--json").out)["targets"][0]
    assert status["kind"] == "deeplake" and "/versions/" in status["lock_path"], "the head after a commit is a version"
    assert deeplake(deeplake_python, OPEN_WRITABLE, str(dataset)) == "LockedException"
    assert local_cli("release", str(dataset), "--token", token).code == 0
    assert deeplake(deeplake_python, OPEN_WRITABLE, str(dataset)) == "writable"


def test_deeplake_writer_shows_as_held_and_blocks_dlock(dataset, deeplake_python, local_cli):
    writer = subprocess.Popen([str(deeplake_python), "-c", OPEN_WRITABLE, str(dataset), "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert writer.stdout.readline().strip() == "writable"
        result = local_cli("status", str(dataset), "--json")
        assert result.code == 1
        target = json.loads(result.out)["targets"][0]
        lock = next(lock for lock in target["locks"] if lock["path"] == target["lock_path"])
        assert lock["format"] == "deeplake-3.9" and lock["holder"]["pid"] == writer.pid
        assert lock["holder"]["this_machine"] and lock["holder"]["pid_alive"]
        assert local_cli("acquire", str(dataset)).code == 1
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        after = json.loads(local_cli("status", str(dataset), "--json").out)["targets"][0]
        lock = next(lock for lock in after["locks"] if lock["path"] == after["lock_path"])
        assert lock["state"] == "held" and lock["holder"]["pid_alive"] is False  # expiry still ahead
        assert "exited" in lock["warning"]
    finally:
        writer.kill()


def test_dlock_run_guards_a_deeplake_job_with_lock_enabled_false(dataset, deeplake_python, local_cli):
    job = (
        "import sys, deeplake\n"
        "ds = deeplake.load(sys.argv[1], read_only=False, lock_enabled=False, verbose=False)\n"
        "ds.x.append(3); ds.flush(); print(len(ds.x))\n"
    )
    result = local_cli("run", str(dataset), "--", str(deeplake_python), "-c", job, str(dataset))
    assert result.code == 0, result.err[-2000:]
    assert result.out.strip().endswith("3")
    assert local_cli("status", str(dataset)).code == 0


WRITE_COMMIT_RELOAD = """
import sys, deeplake
ds = deeplake.load(sys.argv[1], read_only=False, verbose=False)
ds.x.append(3)
ds.commit("after fences")
ds.x.append(4)
ds.flush()
ds = deeplake.load(sys.argv[1], read_only=True, verbose=False)
print(len(ds.x), [int(v) for v in ds.x.numpy().ravel()], len(ds.commits))
"""


def test_deeplake_works_on_a_dataset_holding_dlock_fence_counters(dataset, deeplake_python, local_cli):
    """The fencing counter beside a lock file is invisible to Deep Lake 3."""
    for _ in range(2):
        taken = local_cli("acquire", str(dataset), "--json")
        assert taken.code == 0, taken.err
        assert local_cli("release", str(dataset), "--token", json.loads(taken.out)["token"]).code == 0
    counters = list(dataset.rglob("*.fence"))
    assert [path.name for path in counters] == ["dataset_lock.lock.fence"]  # one, at the root
    assert json.loads(counters[0].read_text())["fence"] == 2
    assert deeplake(deeplake_python, WRITE_COMMIT_RELOAD, str(dataset)) == "4 [1, 2, 3, 4] 2"
    taken = local_cli("acquire", str(dataset), "--json")  # a new head's lock: fences keep growing
    assert taken.code == 0 and json.loads(taken.out)["fence"] == 3
