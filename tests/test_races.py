"""Races between processes that start at the same instant: exactly one winner, on every site."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from conftest import FIXTURES, TESTS, Site

RACERS = 20


def race(site: Site, dlock_cli, target: str) -> list[str]:
    start_at = time.time() + 3.0  # every racer has imported dlock and opened its store by then
    procs = [
        subprocess.Popen([sys.executable, str(TESTS / "helpers" / "racer.py"), target, str(start_at)],
                         env=dlock_cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(RACERS)
    ]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcomes.append(out.strip())
    return outcomes


def winners(outcomes: list[str]) -> list[str]:
    return [o.split()[1] for o in outcomes if o.startswith("won")]


def test_twenty_way_acquisition_race_has_exactly_one_winner(site: Site, dlock_cli):
    ds = site.new_dataset()
    won = winners(race(site, dlock_cli, ds))
    assert len(won) == 1
    assert dlock_cli("release", ds, "--token", won[0]).code == 0, "the winner's token must own the lock"


def test_takeover_race_on_an_expired_lock_has_exactly_one_winner(site: Site, dlock_cli):
    ds = site.new_dataset({"dataset_lock.lock": (FIXTURES / "root.lock").read_bytes()})
    won = winners(race(site, dlock_cli, ds))
    assert len(won) == 1
    assert dlock_cli("release", ds, "--token", won[0]).code == 0


@pytest.mark.parametrize("rounds", [5])
def test_repeated_takeover_races_never_have_two_winners(site_local, local_cli, rounds):
    for _ in range(rounds):
        ds = site_local.new_dataset({"dataset_lock.lock": (FIXTURES / "v3_queries.lock").read_bytes()})
        assert len(winners(race(site_local, local_cli, ds))) == 1
