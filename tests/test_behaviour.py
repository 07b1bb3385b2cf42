"""The behavioural suite: every verb, state and exit code through the real dlock process,
on every site (local disk here; S3 and GCS when their server modules are present). The
verbs that mean the same on a ZooKeeper lock node run on every lock target, that too."""

from __future__ import annotations

import json
import signal
import struct
import time

import pytest

from conftest import FIXTURES, LockTarget, Site

DEEPLAKE_HEAD_MAIN = "deffa73fb79e7b0acf876b9556f8b9e83ab83978"
DEEPLAKE_HEAD_ALT = "095aaa107936e57037047005277466e5dac70e31"


def lock_json(cli, target, *extra):
    result = cli("status", target, "--json", *extra)
    assert result.code in (0, 1, 5), result.err
    document = json.loads(result.out)
    return document, result.code


def primary(document):
    target = document["targets"][0]
    return next(lock for lock in target["locks"] if lock["path"] == target["lock_path"])


def holder_of(document):
    """The lock's (first) holder: a lock file's, or the ZooKeeper contender that holds."""
    return next(lock for lock in document["targets"][0]["locks"] if lock["state"] == "held" and not lock["waiting"])


def test_fresh_lock_is_free_with_exit_0(lock_target: LockTarget):
    document, code = lock_json(lock_target.cli, lock_target.url)
    assert code == 0
    assert document["state"] == "absent"
    assert primary(document)["state"] == "absent"
    assert primary(document)["path"].endswith(lock_target.lock_path_end)


def test_held_lock_makes_status_exit_1_and_a_second_contender_time_out_with_exit_1(lock_target: LockTarget):
    cli, ds = lock_target.cli, lock_target.url
    holding = lock_target.hold("--note", "nightly")
    document, code = lock_json(cli, ds)
    assert code == 1 and holder_of(document)["holder"]["note"] == "nightly"
    started = time.monotonic()
    assert cli("acquire", ds, *lock_target.hold_options, "--timeout", "0.5").code == 1
    assert time.monotonic() - started < 10
    holding.release()
    assert lock_json(cli, ds)[1] == 0


def test_acquire_prints_token_and_second_acquire_is_busy_with_exit_1(site: Site, dlock_cli):
    ds = site.new_dataset()
    first = dlock_cli("acquire", ds, "--note", "nightly ingest")
    assert first.code == 0, first.err
    token = first.out.strip()
    assert len(token) == 32
    second = dlock_cli("acquire", ds)
    assert second.code == 1
    assert ds in second.err and "locked" in second.err
    document, code = lock_json(dlock_cli, ds)
    assert code == 1 and primary(document)["state"] == "held"
    assert primary(document)["holder"]["note"] == "nightly ingest"
    assert token not in json.dumps(document), "status must not reveal the owner token"


def test_acquire_json_has_token_and_expiry(site: Site, dlock_cli):
    ds = site.new_dataset()
    result = dlock_cli("acquire", ds, "--json", "--ttl", "2m")
    assert result.code == 0
    document = json.loads(result.out)
    assert len(document["token"]) == 32 and document["ttl"] == 120
    assert 100 < document["expires_at"] - time.time() <= 120


def test_release_needs_the_right_token(site: Site, dlock_cli):
    ds = site.new_dataset()
    token = dlock_cli("acquire", ds).out.strip()
    wrong = dlock_cli("release", ds, "--token", "0" * 32)
    assert wrong.code == 6 and "token" in wrong.err
    assert lock_json(dlock_cli, ds)[1] == 1
    right = dlock_cli("release", ds, "--token", token)
    assert right.code == 0, right.err
    assert lock_json(dlock_cli, ds)[1] == 0
    again = dlock_cli("release", ds, "--token", token)
    assert again.code == 6 and "not locked" in again.err


def test_refresh_extends_the_expiry_and_checks_the_token(site: Site, dlock_cli):
    ds = site.new_dataset()
    token = dlock_cli("acquire", ds, "--ttl", "30").out.strip()
    before = primary(lock_json(dlock_cli, ds)[0])["expires_at"]
    refreshed = dlock_cli("refresh", ds, "--token", token, "--ttl", "10m")
    assert refreshed.code == 0, refreshed.err
    after = primary(lock_json(dlock_cli, ds)[0])["expires_at"]
    assert after - before > 500
    assert dlock_cli("refresh", ds, "--token", "f" * 32).code == 6


def test_deeplake_leftover_lock_is_stale_and_can_be_taken_over(site: Site, dlock_cli):
    ds = site.new_dataset({"dataset_lock.lock": (FIXTURES / "root.lock").read_bytes()})
    document, code = lock_json(dlock_cli, ds)
    lock = primary(document)
    assert code == 0 and lock["state"] == "stale" and lock["format"] == "deeplake-3.9"
    assert lock["holder"]["node_id"] == "02:fc:00:00:00:01" and lock["holder"]["pid"] == 6098
    taken = dlock_cli("acquire", ds)
    assert taken.code == 0, taken.err
    assert primary(lock_json(dlock_cli, ds)[0])["format"] == "dlock"


def test_legacy_fourteen_byte_lock_is_held_for_300_seconds_after_its_write_time(site: Site, dlock_cli):
    recent = (1).to_bytes(6, "little") + struct.pack("<d", time.time() - 60)
    ds = site.new_dataset({"dataset_lock.lock": recent})
    document, code = lock_json(dlock_cli, ds)
    assert code == 1 and primary(document)["format"] == "deeplake-legacy"
    assert 230 < primary(document)["expires_at"] - time.time() < 241
    shorter, code = lock_json(dlock_cli, ds, "--ttl", "30s")
    assert code == 0 and primary(shorter)["state"] == "stale"


def test_corrupt_lock_exits_5_and_only_force_removes_it(site: Site, dlock_cli):
    ds = site.new_dataset({"dataset_lock.lock": b"garbage"})
    document, code = lock_json(dlock_cli, ds)
    assert code == 5 and primary(document)["state"] == "corrupt"
    assert "14 bytes" in primary(document)["reason"]
    assert dlock_cli("acquire", ds).code == 5
    assert dlock_cli("release", ds, "--if-stale").code == 5
    removed = dlock_cli("release", ds, "--force", "--yes")
    assert removed.code == 0, removed.err
    assert site.get(f"{ds}/dataset_lock.lock") is None


def test_force_without_terminal_or_yes_is_refused_with_exit_6(lock_target: LockTarget):
    cli, ds = lock_target.cli, lock_target.url
    lock_target.hold()
    refused = cli("release", ds, "--force")
    assert refused.code == 6 and "--yes" in refused.err
    assert lock_json(cli, ds)[1] == 1, "a refused --force must remove nothing"
    forced = cli("release", ds, "--force", "--yes")
    assert forced.code == 0
    assert lock_json(cli, ds)[1] == 0


def test_force_release_refuses_when_the_lock_changed_hands_after_it_was_shown(site: Site):
    import dlock

    ds = site.new_dataset()
    first = dlock.acquire(ds)
    shown = dlock.status(ds).primary
    first.refresh()  # the same holder refreshing does not count as a change
    assert dlock.status(ds).primary.fingerprint != shown.fingerprint
    first.release()
    second = dlock.acquire(ds)
    with pytest.raises(dlock.LockBusy, match="changed hands"):
        dlock.release(ds, force=True, seen=shown)
    assert dlock.status(ds).state.value == "held"
    second.refresh()
    removed = dlock.release(ds, force=True, seen=dlock.status(ds).primary)
    assert len(removed) == 1 and dlock.status(ds).state.value == "absent"


def test_if_stale_keeps_a_held_lock_and_removes_a_stale_one(site: Site, dlock_cli):
    ds = site.new_dataset()
    dlock_cli("acquire", ds)
    kept = dlock_cli("release", ds, "--if-stale")
    assert kept.code == 1 and lock_json(dlock_cli, ds)[1] == 1
    stale = site.new_dataset({"dataset_lock.lock": (FIXTURES / "root.lock").read_bytes()})
    assert dlock_cli("release", stale, "--if-stale").code == 0
    assert site.get(f"{stale}/dataset_lock.lock") is None


def test_missing_dataset_exits_4_and_creates_nothing(site: Site, dlock_cli):
    missing = f"{site.root.rstrip('/')}/no-such-dataset"
    for verb in (("status",), ("acquire",), ("release", "--force", "--yes")):
        result = dlock_cli(verb[0], missing, *verb[1:])
        assert result.code == 4, (verb, result.err)
        assert "no-such-dataset" in result.err and "Traceback" not in result.err
    assert site.get(f"{missing}/dataset_lock.lock") is None


def test_deeplake_dataset_locks_the_head_of_each_branch(site: Site, dlock_cli):
    info = {"branches": {"main": DEEPLAKE_HEAD_MAIN, "alt": DEEPLAKE_HEAD_ALT},
            "commits": {DEEPLAKE_HEAD_MAIN: {}, DEEPLAKE_HEAD_ALT: {}}}
    ds = site.new_dataset({
        "version_control_info.json": json.dumps(info).encode(),
        f"versions/{DEEPLAKE_HEAD_ALT}/dataset_lock.lock": (FIXTURES / "v3_branch_alt_dataset_lock.lock").read_bytes(),
        f"versions/{DEEPLAKE_HEAD_MAIN}/dataset_meta.json": b"{}",
    })
    document, code = lock_json(dlock_cli, ds)
    assert document["targets"][0]["kind"] == "deeplake"
    assert primary(document)["path"].endswith(f"versions/{DEEPLAKE_HEAD_MAIN}/dataset_lock.lock")
    alt = next(lock for lock in document["targets"][0]["locks"] if lock["version"] == DEEPLAKE_HEAD_ALT)
    assert alt["state"] == "stale" and alt["branch"] == "alt"
    token = dlock_cli("acquire", ds).out.strip()
    assert site.get(f"{ds}/versions/{DEEPLAKE_HEAD_MAIN}/dataset_lock.lock") is not None
    assert site.get(f"{ds}/dataset_lock.lock") is None, "a root lock does not stop Deep Lake on a dataset with commits"
    assert dlock_cli("acquire", ds, "--branch", "alt").code == 0
    assert dlock_cli("acquire", ds, "--branch", "nope").code == 2
    typo = dlock_cli("acquire", ds, "--commit", DEEPLAKE_HEAD_MAIN[:-1] + "0")
    assert typo.code == 2 and "no such commit" in typo.err
    assert dlock_cli("acquire", site.new_dataset(), "--commit", DEEPLAKE_HEAD_MAIN).code == 2
    assert dlock_cli("release", ds, "--token", token).code == 0


def test_wait_returns_0_when_free_and_1_on_timeout(lock_target: LockTarget):
    cli, ds = lock_target.cli, lock_target.url
    assert cli("wait", ds, "--timeout", "5").code == 0
    lock_target.hold()
    started = time.monotonic()
    timed_out = cli("wait", ds, "--timeout", "0.5")
    assert timed_out.code == 1
    assert time.monotonic() - started < 10


def test_wait_notices_a_release_within_a_few_hundred_ms(lock_target: LockTarget):
    cli, ds = lock_target.cli, lock_target.url
    holding = lock_target.hold()
    waiter = cli.popen("wait", ds, "--timeout", "60")
    time.sleep(3)  # let the waiter back off to its slowest poll
    assert waiter.poll() is None
    released_at = time.monotonic()
    holding.release()
    assert waiter.wait(timeout=30) == 0
    assert time.monotonic() - released_at < 2.5  # release process start-up + at most ~1 s of poll


def test_run_passes_the_exit_status_and_environment_and_releases(lock_target: LockTarget):
    cli, ds = lock_target.cli, lock_target.url
    script = 'test "$DLOCK_LOCK_HELD" = 1 && test -n "$DLOCK_TOKEN" && echo "target=$DLOCK_TARGET"; exit 7'
    result = cli("run", ds, "--", "sh", "-c", script)
    assert result.code == 7, result.err
    assert f"target={ds}" in result.out
    assert lock_json(cli, ds)[1] == 0, "run must release after the command"


def test_run_on_a_busy_lock_exits_1_or_the_conflict_code(lock_target: LockTarget):
    cli, ds = lock_target.cli, lock_target.url
    lock_target.hold()
    assert cli("run", ds, "--", "true").code == 1
    assert cli("run", ds, "--conflict-exit-code", "75", "--", "true").code == 75


def test_run_that_loses_its_lock_terminates_the_command_and_exits_3(lock_target: LockTarget, tmp_path):
    cli, ds = lock_target.cli, lock_target.url
    marker = tmp_path / "child-finished"
    runner = cli.popen("run", ds, "--ttl", "2", "--grace", "1", "--", "sh", "-c", f"sleep 30; touch {marker}")
    deadline = time.monotonic() + 20
    while lock_json(cli, ds)[1] != 1:
        assert time.monotonic() < deadline and runner.poll() is None
        time.sleep(0.1)
    assert cli("release", ds, "--force", "--yes").code == 0
    assert runner.wait(timeout=20) == 3
    assert "lock lost" in runner.stderr.read()
    assert not marker.exists(), "the command must have been terminated"


def test_sigterm_while_waiting_exits_143_promptly(lock_target: LockTarget):
    cli, ds = lock_target.cli, lock_target.url
    lock_target.hold()
    waiter = cli.popen("acquire", ds, *lock_target.hold_options, "--timeout", "-1")
    time.sleep(1.5)
    assert waiter.poll() is None
    waiter.send_signal(signal.SIGTERM)
    assert waiter.wait(timeout=5) == 143
