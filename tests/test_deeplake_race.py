"""Real Deep Lake 3.9 writers and `dlock run` released together on one dataset, dlock's
conditional write aimed at Deep Lake's read-to-write window (tests/helpers/dlrace.py):
never two processes that both believe they hold the lock.

bench/deeplake_race.py runs the same rounds in larger numbers and counts them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Site
from helpers.dlrace import CONTROL, DLOCK_AIMED, SCENARIOS, Lineup, Race, Round, Tally, table
from test_deeplake_interop import deeplake_python  # noqa: F401  (the fixture: Deep Lake's interpreter)

STORES = ["local", "s3"]
# Rounds per store: sized so the whole module takes about two and a half minutes.
AIMED_ROUNDS = {"local": 10, "s3": 8}
CONTROL_ROUNDS = 3


def race(python: Path, site: Site, scenario: str, workdir: Path, rounds: int, lineup: Lineup) -> Tally:
    match = Race(python, site.name, site.root, site.env, scenario, workdir)
    tally = Tally(site.name, scenario, lineup)
    doubles: list[Round] = []
    for _ in range(rounds):
        done = match.run(lineup)
        tally.add(done)
        doubles += [done] if done.double_holders() else []
    print(table([tally]))
    if doubles:
        interleavings = "\n".join(done.interleaving() for done in doubles)
        pytest.fail(f"two processes both believed they held the lock:\n{interleavings}\n{table([tally])}")
    return tally


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("store", STORES)
def test_dlock_run_and_deeplake_never_both_hold_when_dlock_is_aimed_at_deeplakes_window(
    deeplake_python, request, tmp_path, store, scenario  # noqa: F811
):
    site = request.getfixturevalue(f"site_{store}")
    race(deeplake_python, site, scenario, tmp_path / "rounds", AIMED_ROUNDS[store], DLOCK_AIMED)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("store", STORES)
def test_control_deeplake_writers_alone_never_both_hold_under_the_same_aim(
    deeplake_python, request, tmp_path, store, scenario  # noqa: F811
):
    site = request.getfixturevalue(f"site_{store}")
    tally = race(deeplake_python, site, scenario, tmp_path / "rounds", CONTROL_ROUNDS, CONTROL)
    assert tally.deeplake_wins == tally.rounds, "in every round one Deep Lake process holds the dataset"
