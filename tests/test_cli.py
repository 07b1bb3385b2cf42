"""What only the local command line shows: entry points, usage errors, holding, imports, the real Deep Lake dataset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import TESTS
from dlock._version import __version__


def test_version_help_and_python_m_work(local_cli):
    version = local_cli("--version")
    first, libraries = version.out.strip().splitlines()
    assert version.code == 0 and first == f"dlock {__version__}"
    for library in ("typer", "rich", "fsspec", "s3fs", "gcsfs", "kazoo", "redis"):
        assert library in libraries
    help_text = local_cli("--help")
    assert help_text.code == 0
    for verb in ("status", "acquire", "refresh", "release", "wait", "run"):
        assert verb in help_text.out
    module = subprocess.run([sys.executable, "-m", "dlock", "--version"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    assert module.returncode == 0 and __version__ in module.stdout


def test_help_shows_brackets_unescaped_and_each_arguments_description(local_cli):
    status = local_cli("status", "--help")
    assert status.code == 0
    assert "Dataset paths/URLs, zk:// lock nodes or redis:// lock keys." in status.out
    assert "[required]" in status.out and "[default: main]" in status.out
    assert "\\[" not in status.out
    acquire = local_cli("acquire", "--help").out
    assert "TARGET  A dataset path or URL" in acquire and "\\[" not in acquire


@pytest.mark.parametrize("args", [
    ("status",),
    ("acquire", ".", "--timeout", "soon"),
    ("acquire", ".", "--ttl", "0"),
    ("acquire", ".", "--bogus"),
    ("release", "."),
    ("release", ".", "--force", "--token", "x"),
    ("run", "."),
    ("status", "s3:/bucket/ds"),
    ("status", ".", "-o", "novalue"),
])
def test_usage_errors_exit_2_without_traceback(local_cli, tmp_path, args):
    result = local_cli(*[str(tmp_path) if a == "." else a for a in args])
    assert result.code == 2, result
    assert "Traceback" not in result.err and result.err.strip()


def test_debug_shows_the_traceback(local_cli, tmp_path):
    quiet = local_cli("status", str(tmp_path / "missing"))
    loud = local_cli("--debug", "status", str(tmp_path / "missing"))
    assert quiet.code == loud.code == 4
    assert "Traceback" not in quiet.err and "Traceback" in loud.err


def test_status_of_several_targets_exits_1_if_any_is_held(local_cli, tmp_path):
    free, held = tmp_path / "a", tmp_path / "b"
    free.mkdir(), held.mkdir()
    local_cli("acquire", str(held))
    result = local_cli("status", str(free), str(held))
    assert result.code == 1
    assert f"{free}: free" in result.out and f"{held}: held" in result.out
    document = json.loads(local_cli("status", str(free), str(held), "--json").out)
    assert [t["state"] for t in document["targets"]] == ["absent", "held"] and document["state"] == "held"


def test_status_of_several_targets_reports_each_failure_and_still_shows_the_rest(local_cli, tmp_path):
    result = local_cli("status", str(tmp_path), str(tmp_path / "missing"))
    assert result.code == 4
    assert f"{tmp_path}: free" in result.out and "missing" in result.err
    document = json.loads(local_cli("status", str(tmp_path), str(tmp_path / "missing"), "--json").out)
    assert [t["target"] for t in document["targets"]] == [str(tmp_path)]
    assert document["errors"][0]["target"].endswith("missing")


def test_piped_output_is_plain_text(local_cli, tmp_path):
    result = local_cli("status", str(tmp_path))
    assert "\x1b[" not in result.out and "LOCK" in result.out


def test_acquire_hold_refreshes_until_sigterm_then_releases(local_cli, tmp_path):
    holder = local_cli.popen("acquire", str(tmp_path), "--hold", "--ttl", "1")
    token = holder.stdout.readline().strip()
    assert len(token) == 32
    time.sleep(2.5)  # longer than the ttl: only refreshing keeps it held
    assert local_cli("status", str(tmp_path)).code == 1
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(timeout=10) == 0
    assert local_cli("status", str(tmp_path)).code == 0


def test_acquire_hold_exits_3_when_the_lock_is_forced_away(local_cli, tmp_path):
    holder = local_cli.popen("acquire", str(tmp_path), "--hold", "--ttl", "1")
    holder.stdout.readline()
    assert local_cli("release", str(tmp_path), "--force", "--yes").code == 0
    assert holder.wait(timeout=10) == 3


def test_sigint_while_waiting_exits_130(local_cli, tmp_path):
    local_cli("acquire", str(tmp_path))
    waiter = local_cli.popen("wait", str(tmp_path))
    time.sleep(1.0)
    waiter.send_signal(signal.SIGINT)
    assert waiter.wait(timeout=5) == 130


def test_run_forwards_sigterm_to_the_command(local_cli, tmp_path):
    runner = local_cli.popen("run", str(tmp_path), "--", "sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done")
    deadline = time.monotonic() + 10
    while local_cli("status", str(tmp_path)).code != 1:
        assert time.monotonic() < deadline
    time.sleep(0.3)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=10) == 42
    assert local_cli("status", str(tmp_path)).code == 0


def test_run_killed_with_sigkill_takes_its_command_down(local_cli, tmp_path):
    pidfile = tmp_path / "child.pid"
    runner = local_cli.popen("run", str(tmp_path), "--", "sh", "-c", f"echo $$ > {pidfile}; exec sleep 60")
    deadline = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pidfile.read_text())
    runner.kill()
    runner.wait()
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, "the command outlived dlock run"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for its reaper is dead too
        return stat.read().split()[2] != "Z"


def test_run_of_a_missing_command_exits_127_and_releases(local_cli, tmp_path):
    result = local_cli("run", str(tmp_path), "--", "no-such-command-here")
    assert result.code == 127 and "no-such-command-here" in result.err
    assert local_cli("status", str(tmp_path)).code == 0


def test_real_deeplake_dataset_shows_both_leftover_locks(local_cli, deeplake_dataset):
    result = local_cli("status", str(deeplake_dataset), "--json")
    assert result.code == 0  # both leftovers long expired
    target = json.loads(result.out)["targets"][0]
    by_branch = {lock["branch"]: lock for lock in target["locks"]}
    assert target["kind"] == "deeplake"
    assert set(by_branch) == {"main", "alt"}
    for lock in by_branch.values():
        assert lock["state"] == "stale" and lock["format"] == "deeplake-3.9"
        assert lock["holder"]["node_id"] == "02:fc:00:00:00:01" and lock["holder"]["tool"] == "deeplake"
    assert target["lock_path"] == by_branch["main"]["path"]


# What `dlock status ./ds` must not import: the cloud, ZooKeeper and Redis clients, and what
# only other verbs need (start-up time, see bench/startup.py).
NOT_ON_THE_STATUS_PATH = (
    "s3fs", "gcsfs", "adlfs", "azure", "kazoo", "redis", "boto3", "botocore", "aiobotocore", "fsspec", "rich", "pydantic", "prometheus_client",
    "dlock.writer", "dlock.backends.tree", "dlock.cli.runner", "concurrent.futures", "logging", "json",
    "secrets", "hashlib", "socket", "typing_extensions", "importlib.metadata",
)


def imported_by_dlock(*argv: str) -> tuple[str, list[str]]:
    """Run dlock in a fresh interpreter: its output and every module it imported."""
    probe = (  # dlock ends with os._exit after the exit handlers: print from one
        "import atexit, sys, runpy; sys.argv = ['dlock', *sys.argv[1:]]\n"
        "atexit.register(lambda: print('MODULES=' + ','.join(sorted(sys.modules))))\n"
        "runpy.run_module('dlock', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    assert result.returncode == 0, result.stderr
    *out, modules = result.stdout.strip().splitlines()
    assert modules.startswith("MODULES=")
    return "\n".join(out), modules[len("MODULES="):].split(",")


def test_status_of_a_local_dataset_imports_no_cloud_or_zookeeper_client(tmp_path):
    out, modules = imported_by_dlock("status", str(tmp_path))
    assert "free" in out
    assert [name for name in NOT_ON_THE_STATUS_PATH if name in modules] == []


def test_version_imports_neither_typer_nor_the_lock_code():
    out, modules = imported_by_dlock("--version")
    assert out.splitlines()[0] == f"dlock {__version__}"
    assert [name for name in ("typer", "click", "dlock.api", "dlock.cli.app", "importlib.metadata") if name in modules] == []


def test_version_lists_the_same_library_versions_as_importlib_metadata(local_cli):
    from importlib import metadata

    libraries = local_cli("--version").out.strip().splitlines()[1].split(", ")
    for entry in libraries:
        name, _, version = entry.partition(" ")
        try:
            expected = metadata.version(name)
        except metadata.PackageNotFoundError:
            expected = "(not installed)"
        assert version == expected, entry


def test_the_installed_console_script_runs_dlock():
    import sysconfig
    from pathlib import Path

    script = Path(sysconfig.get_path("scripts")) / "dlock"
    assert script.exists(), "`pip install .` puts the dlock script beside this Python"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    assert result.returncode == 0 and result.stdout.startswith(f"dlock {__version__}")


def test_a_store_whose_library_is_missing_names_how_to_install_it():
    without_s3fs = (
        "import sys, runpy; sys.modules['s3fs'] = None; sys.argv = ['dlock', 'status', 's3://bucket/ds']\n"
        "runpy.run_module('dlock', run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", without_s3fs], capture_output=True, text=True,
                            env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(TESTS.parent)})
    assert result.returncode == 2, result
    assert "pip install s3fs" in result.stderr and "Traceback" not in result.stderr


def test_list_and_clean_count_one_dataset_and_one_lock_in_the_singular(local_cli, tmp_path):
    dataset = tmp_path / "only"
    dataset.mkdir()
    local_cli("acquire", str(dataset))
    listed = local_cli("list", str(tmp_path))
    assert "1 dataset, 1 lock: 1 held, 0 stale, 0 corrupt." in listed.out, listed.out
    (dataset / "dataset_lock.lock").write_bytes(b"short")
    cleaned = local_cli("clean", str(tmp_path), "--dry-run")
    assert "1 dataset, 1 lock: 0 held, 0 stale, 1 corrupt." in cleaned.err, cleaned.err
