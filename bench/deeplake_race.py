"""Aimed races between real Deep Lake 3.9 writers and `dlock run` on one dataset, counted
(the harness and how it aims: tests/helpers/dlrace.py).

    python bench/deeplake_race.py [--rounds 50] [--control-rounds 20] [--stores local,s3] [--scenarios absent,stale]

Each round is one Deep Lake process and one `dlock run --timeout 0` aimed at Deep Lake's
read-to-write window; the control is one Deep Lake process and two more aimed the same
way. A double-holder round is one where two processes both believed they held the lock.
S3 is a moto server started here on loopback. Deep Lake comes from DLOCK_DEEPLAKE_VENV
or .cache/deeplake3-venv (scripts/install-deeplake3.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "helpers")]

from dlrace import CONTROL, DLOCK_AIMED, SCENARIOS, Lineup, Race, Tally, table  # noqa: E402
from objectstore import bucket_on_each, servers  # noqa: E402

VENV = Path(os.environ.get("DLOCK_DEEPLAKE_VENV", ROOT / ".cache" / "deeplake3-venv"))


@contextlib.contextmanager
def store_roots(stores: list[str]) -> Iterator[dict[str, tuple[str, dict[str, str]]]]:
    """Each store's root URL and the environment that reaches it."""
    roots = {"local": (tempfile.mkdtemp(prefix="dlrace-"), {})}
    if "s3" not in stores:
        yield roots
        return
    with servers() as endpoints:
        bucket = bucket_on_each(endpoints)  # also points this process's AWS_* at moto
        env = {key: os.environ[key] for key in
               ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
        yield {**roots, "s3": (f"s3://{bucket}", env)}


def race(match: Race, rounds: int, lineup: Lineup) -> Tally:
    """The rounds counted; the interleaving of each double holding on stderr as it happens."""
    tally = Tally(match.store, match.scenario, lineup)
    for _ in range(rounds):
        done = match.run(lineup)
        tally.add(done)
        if done.double_holders():
            print(done.interleaving(), file=sys.stderr, flush=True)
    print(f"{tally.store} {tally.scenario} {lineup}: {tally.doubles} of {tally.rounds} rounds had two holders",
          file=sys.stderr, flush=True)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--control-rounds", type=int, default=20)
    parser.add_argument("--stores", default="local,s3")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    stores, scenarios = args.stores.split(","), args.scenarios.split(",")
    python = VENV / "bin" / "python"
    if not python.exists():
        sys.exit(f"no Deep Lake 3 at {VENV}: run scripts/install-deeplake3.sh or set DLOCK_DEEPLAKE_VENV")
    tallies, controls = [], []
    with store_roots(stores) as roots:
        workdir = Path(tempfile.mkdtemp(prefix="dlrace-rounds-"))
        for store in stores:
            root, env = roots[store]
            for scenario in scenarios:
                match = Race(python, store, root, env, scenario, workdir)
                tallies.append(race(match, args.rounds, DLOCK_AIMED))
                controls.append(race(match, args.control_rounds, CONTROL))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"rounds logged in {workdir}")
    print(table(tallies + controls))


if __name__ == "__main__":
    main()
