"""Fencing numbers: every acquisition's is larger than every earlier one's of the same lock,
on every backend, and `dlock check` is the last word before a commit."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import dlock
from conftest import SITES, TESTS, LockTarget, Site

HELPERS = TESTS / "helpers"




def fence_of_holder(target: LockTarget) -> tuple[str, int, object]:
    """Take the lock through the CLI (a held process where locks live with their holder);
    the token, the fence from `acquire --json`, and the holder process if any."""
    if target.hold_options:
        process = target.cli.popen("acquire", target.url, *target.hold_options, "--json")
        target._holders.append(process)
        assert process.stdout is not None
        lines = []
        while not lines or lines[-1].strip() != "}":
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            lines.append(line)
        document = json.loads("".join(lines))
        return document["token"], document["fence"], process
    taken = target.cli("acquire", target.url, "--json")
    assert taken.code == 0, taken.err
    document = json.loads(taken.out)
    return document["token"], document["fence"], None


def test_fences_strictly_increase_across_100_acquire_release_cycles(lock_target: LockTarget):
    cycles = subprocess.run([sys.executable, str(HELPERS / "fence_cycles.py"), lock_target.url, "100"],
                            env=lock_target.cli.env, capture_output=True, text=True, timeout=300)
    assert cycles.returncode == 0, cycles.stderr[-2000:]
    fences = [int(line) for line in cycles.stdout.split()]
    assert len(fences) == 100
    assert all(a < b for a, b in zip(fences, fences[1:])), fences


def test_each_race_has_one_winner_whose_fence_exceeds_every_earlier_winners(lock_target: LockTarget):
    """On lock files each round is a takeover of the previous winner's lock once it went
    stale (ttl 4 s, never released: long enough that a racer slow to start cannot take
    over the round's own winner); on ZooKeeper and Redis the winner releases once every
    other racer has tried."""
    stale_takeover = lock_target.name in SITES
    winners: list[int] = []
    for _ in range(3):
        start = time.time() + 2.5
        racers = [subprocess.Popen([sys.executable, str(HELPERS / "racer.py"), lock_target.url, str(start), "4",
                                    "never" if stale_takeover else "3"],
                                   env=lock_target.cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(6)]
        outcomes = [racer.communicate(timeout=120) for racer in racers]
        assert all(racer.returncode == 0 for racer in racers), [err[-800:] for _, err in outcomes]
        won = [int(out.split()[2]) for out, _ in outcomes if out.startswith("won")]
        assert len(won) == 1, outcomes
        winners += won
        if stale_takeover:
            time.sleep(max(0.0, start + 4.2 - time.time()))  # stale now: the next round takes it over
    assert all(a < b for a, b in zip(winners, winners[1:])), winners


def test_check_holds_until_a_forced_release_then_exits_6(lock_target: LockTarget):
    token, fence, _ = fence_of_holder(lock_target)
    cli, url = lock_target.cli, lock_target.url
    assert cli("check", url, "--token", token).code == 0
    checked = cli("check", url, "--token", token, "--fence", str(fence), "--json")
    assert checked.code == 0, checked.err
    assert json.loads(checked.out)["fence"] == fence
    status = json.loads(cli("status", url, "--json").out)["targets"][0]
    assert fence in [lock.get("fence") for lock in status["locks"]]
    assert f"fence {fence}" in cli("status", url).out
    wrong_fence = cli("check", url, "--token", token, "--fence", str(fence + 1))
    assert wrong_fence.code == 6 and f"fence {fence}" in wrong_fence.err
    assert cli("check", url, "--token", "f" * 32).code == 6
    assert cli("release", url, "--force", "--yes").code == 0
    after = cli("check", url, "--token", token, "--fence", str(fence))
    assert after.code == 6, after.err
    assert "Traceback" not in after.err and after.err.count("\n") <= 2


def test_run_gives_its_command_the_fence_and_later_runs_get_larger_ones(lock_target: LockTarget):
    shown = []
    for _ in range(2):
        ran = lock_target.cli("run", lock_target.url, "--", "sh", "-c", 'echo "$DLOCK_FENCE"; dlock check "$DLOCK_TARGET"')
        assert ran.code == 0, ran.err
        shown.append(int(ran.out.strip()))
    assert shown[0] < shown[1]


def test_a_holder_paused_past_its_ttl_gets_no_fence_and_later_holders_larger_ones(site: Site, monkeypatch):
    """The paused holder raises the counter after the takeover, but its conditional rewrite
    of the lock fails: it gets LockLost, never a number larger than the new holder's."""
    for name, value in site.env.items():
        monkeypatch.setenv(name, value)
    url = site.new_dataset()
    paused = dlock.acquire(url, ttl=1)
    time.sleep(1.3)
    with dlock.acquire(url) as newer:
        newer_fence = newer.fence
        with pytest.raises(dlock.LockLost):
            paused.fence  # noqa: B018  (the property is the call under test)
    with dlock.acquire(url) as later:
        assert later.fence > newer_fence
    paused.backend.close()


def test_a_counter_that_is_not_dlocks_stops_acquire_with_exit_5_and_leaves_no_lock(tmp_path, local_cli):
    dataset = tmp_path / "ds"
    dataset.mkdir()
    (dataset / "dataset_lock.lock.fence").write_bytes(b"\x1b[31mnot a counter")
    taken = local_cli("acquire", str(dataset))
    assert taken.code == 5, taken.err
    assert "dataset_lock.lock.fence" in taken.err and "\x1b" not in taken.err
    assert not (dataset / "dataset_lock.lock").exists()
    assert local_cli("status", str(dataset)).code == 0
