"""`dlock list ROOT --format prometheus`: lock metrics for node_exporter's textfile collector,
read back with prometheus_client's own parser and checked against a tree of known locks."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import FIXTURES, TESTS, DlockRunner, Site
from test_cli import imported_by_dlock

ODD_NAMES = ['quo"ted', "new\nline", "back\\slash", "tab\tand ünïcode"]
DEEPLAKE_NODE = "02:fc:00:00:00:01"  # the node id in the real Deep Lake lock files of fixtures/


def metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by metric name, parsed by prometheus_client."""
    return {family.name: [(sample.labels, sample.value) for sample in family.samples]
            for family in text_string_to_metric_families(text)}


def one(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    matching = [value for found, value in samples if all(found.get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, (labels, samples)
    return matching[0]


def dataset(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir()
    (path / "dataset_meta.json").write_text("{}")
    return path


def deeplake_lock_expiring_at(expires_at: float) -> bytes:
    """A real Deep Lake 3.9 lock file (fixtures/) with its expiry moved: node id, expiry, pid."""
    data = (FIXTURES / "root.lock").read_bytes()
    return data[:6] + struct.pack("<d", expires_at) + data[14:]


@pytest.fixture
def known_tree(tmp_path: Path, local_cli: DlockRunner) -> tuple[Path, dict[str, object]]:
    """Held, stale and corrupt locks, each kind both as dlock and as Deep Lake write them:

    fx2        the real Deep Lake dataset: main's head taken by dlock (held, at a version), alt's leftover (stale)
    running    a Deep Lake 3.9 lock written 100 s ago (held, no host: its node id speaks for it)
    crashed    a Deep Lake 3.9 lock long expired (stale)
    torn       three bytes (corrupt)
    ODD_NAMES  held by dlock
    """
    root = tmp_path / "root"
    root.mkdir()
    shutil.unpack_archive(FIXTURES / "v3_dataset_after_sigkill.tar.gz", root)
    assert local_cli("acquire", str(root / "fx2"), "--ttl", "600").code == 0
    (dataset(root, "running") / "dataset_lock.lock").write_bytes(deeplake_lock_expiring_at(time.time() + 200))
    shutil.copy(FIXTURES / "root.lock", dataset(root, "crashed") / "dataset_lock.lock")
    (dataset(root, "torn") / "dataset_lock.lock").write_bytes(b"\x01\x02\x03")
    for name in ODD_NAMES:
        assert local_cli("acquire", str(dataset(root, name)), "--ttl", "900").code == 0
    listed = local_cli("list", str(root), "--json")
    held = [json.loads(line) for line in listed.out.splitlines() if json.loads(line)["state"] == "held"]
    return root, {"held": held}


def test_metrics_count_locks_by_state_and_describe_each_held_lock(known_tree, local_cli):
    root, known = known_tree
    started = time.time()
    result = local_cli("list", str(root), "--format", "prometheus")
    assert result.code == 0, result.err
    assert result.err == ""  # quiet for cron
    found = metrics(result.out)
    assert one(found["dlock_locks"], root=str(root), state="held") == 2 + len(ODD_NAMES)
    assert one(found["dlock_locks"], root=str(root), state="stale") == 2
    assert one(found["dlock_locks"], root=str(root), state="corrupt") == 1
    assert one(found["dlock_datasets"], root=str(root)) == 4 + len(ODD_NAMES)
    assert one(found["dlock_scan_success"], root=str(root)) == 1
    assert one(found["dlock_scan_errors"], root=str(root)) == 0
    assert 0 < one(found["dlock_scan_duration_seconds"], root=str(root)) < 60
    assert started - 1 <= one(found["dlock_scan_timestamp_seconds"], root=str(root)) <= time.time() + 1

    held = known["held"]
    assert len(found["dlock_lock_ttl_remaining_seconds"]) == len(held)  # one series per held lock, none for others
    for lock in held:
        labels = {"dataset": lock["dataset"], "version": lock["version"] or "", "lock": lock["path"],
                  "host": lock["holder"]["host"] or lock["holder"]["node_id"]}
        remaining = one(found["dlock_lock_ttl_remaining_seconds"], **labels)
        assert 0 < remaining <= lock["ttl"]
        assert 0 <= one(found["dlock_lock_age_seconds"], **labels) <= lock["ttl"] - remaining + 60


def test_a_held_lock_at_a_version_and_a_deeplake_lock_carry_their_version_and_holder(known_tree, local_cli):
    root, _ = known_tree
    found = metrics(local_cli("list", str(root), "--format", "prometheus").out)
    head = one(found["dlock_lock_ttl_remaining_seconds"], dataset=str(root / "fx2"))
    assert 540 < head <= 600
    fx2 = [labels for labels, _ in found["dlock_lock_held_seconds"] if labels["dataset"] == str(root / "fx2")]
    assert len(fx2) == 1 and len(fx2[0]["version"]) == 40 and fx2[0]["lock"].endswith(f"{fx2[0]['version']}/dataset_lock.lock")
    # Deep Lake records no host and no start: its node id names the machine, its last write the start.
    running = {"dataset": str(root / "running"), "host": DEEPLAKE_NODE, "version": ""}
    assert 90 < one(found["dlock_lock_held_seconds"], **running) < 160
    assert 90 < one(found["dlock_lock_age_seconds"], **running) < 160
    assert 140 < one(found["dlock_lock_ttl_remaining_seconds"], **running) <= 200


def test_odd_dataset_names_come_back_exactly_from_the_parser(known_tree, local_cli):
    root, _ = known_tree
    out = local_cli("list", str(root), "--format", "prometheus").out
    datasets = {labels["dataset"] for labels, _ in metrics(out)["dlock_lock_held_seconds"]}
    for name in ODD_NAMES:
        assert str(root / name) in datasets, (name, datasets)
    assert 'quo\\"ted' in out and "new\\nline" in out and "back\\\\slash" in out  # escaped as the format says
    assert not any(line.startswith("line") for line in out.splitlines())  # a newline never splits a sample


def test_output_replaces_the_file_in_one_rename_and_leaves_no_temporary_file(known_tree, local_cli, tmp_path):
    root, _ = known_tree
    textfiles = tmp_path / "textfile_collector"
    textfiles.mkdir()
    target = textfiles / "dlock.prom"
    target.write_text("# an older scan\n")
    before = target.stat().st_ino
    result = local_cli("list", str(root), "--format", "prometheus", "--output", str(target))
    assert result.code == 0 and result.out == "" and result.err == ""
    assert os.listdir(textfiles) == ["dlock.prom"]
    assert target.stat().st_ino != before  # a new file renamed over the old, not the old rewritten in place
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # node_exporter, another user, can read it
    assert one(metrics(target.read_text())["dlock_locks"], state="corrupt") == 1


def test_output_into_a_missing_directory_fails_before_scanning_with_exit_2(local_cli, tmp_path):
    result = local_cli("list", str(tmp_path), "--format", "prometheus", "--output", str(tmp_path / "no" / "dlock.prom"))
    assert result.code == 2
    assert "no such directory" in result.err and "Traceback" not in result.err


def test_a_root_that_cannot_be_scanned_still_gets_metrics_saying_so_and_exits_4(local_cli, tmp_path):
    target = tmp_path / "dlock.prom"
    result = local_cli("list", str(tmp_path / "gone"), "--format", "prometheus", "--output", str(target))
    assert result.code == 4 and "no such directory" in result.err
    found = metrics(target.read_text())
    assert one(found["dlock_scan_success"], root=str(tmp_path / "gone")) == 0
    assert one(found["dlock_scan_errors"], root=str(tmp_path / "gone")) == 1
    assert "dlock_locks" not in found  # no figures rather than zeros that look like a healthy fleet


@pytest.mark.parametrize("argv, complaint", [
    (["--json", "--format", "prometheus"], "contradict"),
    (["--output", "x.prom"], "--format prometheus"),
    (["--format", "json", "--output", "x.prom"], "--format prometheus"),
    (["--stale", "--format", "prometheus"], "every lock"),
    (["--format", "yaml"], "yaml"),
])
def test_format_options_that_do_not_go_together_exit_2(local_cli, tmp_path, argv, complaint):
    result = local_cli("list", str(tmp_path), *argv)
    assert result.code == 2 and complaint in result.err, result.err


def test_format_json_is_the_same_as_json(known_tree, local_cli):
    root, _ = known_tree
    short = local_cli("list", str(root), "--json").out.splitlines()
    long = local_cli("list", str(root), "--format", "json").out.splitlines()
    assert [json.loads(line)["path"] for line in short] == [json.loads(line)["path"] for line in long]
    assert len(short) == 5 + len(ODD_NAMES)  # fx2 has two


def test_without_prometheus_client_the_metrics_name_how_to_install_it(tmp_path):
    probe = ("import sys, runpy; sys.modules['prometheus_client'] = None\n"
             f"sys.argv = ['dlock', 'list', {str(tmp_path)!r}, '--format', 'prometheus']\n"
             "runpy.run_module('dlock', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    assert result.returncode == 2, result
    assert "pip install prometheus-client" in result.stderr and "Traceback" not in result.stderr


def test_plain_list_does_not_import_prometheus_client(tmp_path):
    _, modules = imported_by_dlock("list", str(tmp_path))
    assert "prometheus_client" not in modules


def test_metrics_of_a_tree_on_every_store(site: Site, dlock_cli: DlockRunner):
    """The same figures whether the lock files are on disk, S3 or GCS (a flat listing per folder)."""
    root = f"{site.root.rstrip('/')}/fleet-{uuid.uuid4().hex[:8]}"
    site.put(f"{root}/held/dataset_meta.json", b"{}")
    site.put(f"{root}/team/crashed/dataset_meta.json", b"{}")
    site.put(f"{root}/team/crashed/dataset_lock.lock", (FIXTURES / "root.lock").read_bytes())
    site.put(f"{root}/team/torn/dataset_meta.json", b"{}")
    site.put(f"{root}/team/torn/dataset_lock.lock", b"\x01\x02\x03")
    assert dlock_cli("acquire", f"{root}/held", "--ttl", "120").code == 0
    result = dlock_cli("list", root, "--format", "prometheus")
    assert result.code == 0, result.err
    found = metrics(result.out)
    assert [one(found["dlock_locks"], state=state) for state in ("held", "stale", "corrupt")] == [1, 1, 1]
    assert one(found["dlock_datasets"]) == 3
    listed = json.loads(dlock_cli("list", root, "--held", "--json").out)  # labels name a lock as `list` does
    assert 60 < one(found["dlock_lock_ttl_remaining_seconds"], dataset=listed["dataset"], lock=listed["path"]) <= 120


def test_metrics_of_redis_lock_keys_under_a_prefix(redis_server, local_cli):
    """A lock service's locks are figures too: each held key with its holder and remaining ttl."""
    prefix = f"{redis_server.url}/0/metrics-{uuid.uuid4().hex[:8]}/"
    for name in ("a", 'b"c\\d'):  # (a URL cannot carry a newline: urlsplit drops it)
        assert local_cli("acquire", prefix + name, "--ttl", "300").code == 0
    result = local_cli("list", prefix, "--format", "prometheus")
    assert result.code == 0, result.err
    found = metrics(result.out)
    assert one(found["dlock_locks"], state="held") == 2 and one(found["dlock_locks"], state="stale") == 0
    listed = [json.loads(line) for line in local_cli("list", prefix, "--json").out.splitlines()]
    for lock in listed:
        labels = {"dataset": lock["dataset"], "host": lock["holder"]["host"], "lock": lock["path"]}
        assert 240 < one(found["dlock_lock_ttl_remaining_seconds"], **labels) <= 300
    assert {lock["dataset"].rsplit("/", 1)[-1] for lock in listed} == {"a", 'b"c\\d'}
