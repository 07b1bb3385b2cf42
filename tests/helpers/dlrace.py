"""Aimed races between real Deep Lake 3.9 writers and `dlock run` on one dataset.

Deep Lake takes its lock by reading the lock file and, if it is absent or stale,
writing its 18 bytes unconditionally, then reading them back after a short wait
(deeplake/core/lock.py). A conditional create or takeover by dlock that lands between
Deep Lake's read and its write is overwritten, and both sides can believe they hold the
dataset. Started together without aim, that gap (~0.2 ms on local disk, ~15 ms on moto)
is almost never hit, so each round steers dlock's start into it:

- every racer imports what it needs, says "ready", and waits for an absolute start time
  (dlrace_start.py); Deep Lake racers (the anchors) start at T, the aimed racers at
  T + offset;
- each racer logs when it read and wrote the lock file; from the rounds so far, the
  offset is the median of the anchors' lock section (read to write, from their start)
  minus the median of the aimed racers' (their conditional write), each over the
  recent rounds, plus a sweep across ±spread, so the aim follows the machine's timing;
- a racer that believes it holds the lock records when, and a round in which two
  believers' intervals overlap is a double holding.

The control is the same race with Deep Lake processes as the aimed racers: Deep Lake's
write-wait-verify keeps them apart, so it must show no double holding.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Sequence

HELPERS = Path(__file__).parent
ROOT = HELPERS.parents[1]
STALE_LOCK = ROOT / "tests" / "fixtures" / "deeplake3" / "root.lock"  # Deep Lake 3.9's 18 bytes, expired
SCENARIOS = ("absent", "stale")
# Half-width of the sweep around the calibrated offset: a few times the start jitter.
SPREAD = {"local": 0.0015, "s3": 0.02}
SWEEP_STEPS = 9
CALIBRATION_ROUNDS = 9  # the recent rounds whose medians aim the next one
HOLD = 1.0


@dataclasses.dataclass(frozen=True)
class Racer:
    """One process of a round, as it logged itself. Times are time.time() on this machine."""

    kind: str  # "deeplake" or "dlock"
    aimed: bool
    pid: int
    start_at: float
    outcome: str  # Deep Lake: held / busy / error: ...; dlock: its exit status
    held: tuple[float, float] | None  # while it believed it held the dataset
    reads: tuple[tuple[float, float], ...]  # lock file reads (Deep Lake)
    writes: tuple[tuple[float, float, str], ...]  # lock file writes: (start, end, what)

    def lock_section(self) -> tuple[float, float] | None:
        """What aiming steers: Deep Lake's read-to-write of its lock, dlock's last conditional write."""
        if self.kind == "dlock":
            return self.writes[-1][:2] if self.writes else None
        if not self.reads:
            return None
        return self.reads[0][0], (self.writes[0][1] if self.writes else self.reads[0][1])

    def section_offset(self) -> float | None:
        section = self.lock_section()
        return None if section is None else (section[0] + section[1]) / 2 - self.start_at


@dataclasses.dataclass(frozen=True)
class Round:
    number: int
    store: str
    scenario: str
    offset: float  # the aimed racers' start after the anchors'
    racers: tuple[Racer, ...]

    def double_holders(self) -> list[tuple[Racer, Racer]]:
        believers = [racer for racer in self.racers if racer.held]
        return [(a, b) for a, b in itertools.combinations(believers, 2)
                if a.held[0] < b.held[1] and b.held[0] < a.held[1]]  # type: ignore[index]

    def hit(self) -> bool:
        """Did an aimed racer's lock write overlap an anchor's read-to-write?"""
        sections = [(racer.aimed, racer.lock_section()) for racer in self.racers]
        return any(a[0] < b[1] and b[0] < a[1]
                   for aimed, a in sections if aimed and a
                   for anchor, b in sections if not anchor and b)

    def winners(self) -> set[str]:
        return {racer.kind for racer in self.racers if racer.held}

    def interleaving(self) -> str:
        """Every racer's steps in time order, in ms after the anchors' start."""
        zero = min(racer.start_at for racer in self.racers)
        events = []
        for racer in self.racers:
            who = f"{racer.kind}{' (aimed)' if racer.aimed else ''} pid {racer.pid}"
            events.append((racer.start_at, f"{who} starts"))
            events += [(start, f"{who} reads the lock ({(end - start) * 1e3:.2f} ms)") for start, end in racer.reads]
            events += [(start, f"{who} writes the lock: {what} ({(end - start) * 1e3:.2f} ms)")
                       for start, end, what in racer.writes]
            if racer.held:
                events += [(racer.held[0], f"{who} believes it holds"), (racer.held[1], f"{who} lets go")]
            else:
                events.append((max([racer.start_at, *(end for _, end, _ in racer.writes)]), f"{who}: {racer.outcome}"))
        lines = [f"round {self.number} ({self.store}, {self.scenario}, aimed {self.offset * 1e3:+.2f} ms):"]
        lines += [f"  {(when - zero) * 1e3:9.3f} ms  {what}" for when, what in sorted(events)]
        return "\n".join(lines)


class Aim:
    """The aimed racers' start offset, learnt from the rounds so far (see the module's doc)."""

    def __init__(self, spread: float) -> None:
        self.spread = spread
        self.anchors: list[float] = []
        self.aimed: list[float] = []
        self.rounds = 0

    def next_offset(self) -> float:
        sweep = -self.spread + 2 * self.spread * (self.rounds % SWEEP_STEPS) / (SWEEP_STEPS - 1)
        self.rounds += 1
        if not (self.anchors and self.aimed):
            return 0.0  # the first round only calibrates
        recent = slice(-CALIBRATION_ROUNDS, None)
        return statistics.median(self.anchors[recent]) - statistics.median(self.aimed[recent]) + sweep

    def learn(self, racers: Sequence[Racer]) -> None:
        for racer in racers:
            offset = racer.section_offset()
            if offset is not None:
                (self.aimed if racer.aimed else self.anchors).append(offset)


@dataclasses.dataclass(frozen=True)
class Lineup:
    """Who races in a round: `anchors` Deep Lake processes start at T, `aimed` racers of
    `aimed_kind` ("dlock" or "deeplake") at T + the aim's offset."""

    aimed_kind: str = "dlock"
    anchors: int = 1
    aimed: int = 1

    def __str__(self) -> str:
        if self.aimed_kind == "deeplake":
            return f"control: {self.anchors + self.aimed} Deep Lake"
        return f"{self.anchors} Deep Lake + {self.aimed} dlock run"


DLOCK_AIMED = Lineup()
CONTROL = Lineup("deeplake", anchors=1, aimed=2)  # Deep Lake alone: its verify must keep them apart


class Race:
    """One dataset (made once by the real Deep Lake) raced over many rounds in one scenario.

    `root` is a directory or an s3:// bucket URL; `env` reaches its store (the
    AWS_* variables of a moto server), and must also be in this process's environment,
    where dlock's store resets the lock file before each round.
    """

    def __init__(self, deeplake_python: Path, store: str, root: str, env: dict[str, str], scenario: str,
                 workdir: Path, hold: float = HOLD) -> None:
        from dlock.targets import open_backend

        self.deeplake_python = deeplake_python
        self.store, self.scenario, self.env, self.hold = store, scenario, env, hold
        self.workdir = workdir
        self.dataset = f"{root.rstrip('/')}/race-{scenario}-{uuid.uuid4().hex[:8]}"
        head = self._deeplake("make").strip().splitlines()[-1]
        self.backend = open_backend(self.dataset)
        self.lock_path = self.backend.layout.layout().target_lock.path
        deeplake_locks = f"versions/{head}/dataset_lock.lock"
        assert self.lock_path.endswith(deeplake_locks), f"dlock takes {self.lock_path}, Deep Lake {deeplake_locks}"
        self.aims = {"dlock": Aim(SPREAD[store]), "deeplake": Aim(SPREAD[store])}
        self.rounds = 0

    def run(self, lineup: Lineup = DLOCK_AIMED) -> Round:
        self.rounds += 1
        round_dir = self.workdir / f"{self.store}-{self.scenario}-{lineup.aimed_kind}-{self.rounds}"
        round_dir.mkdir(parents=True)
        self._reset_lock()
        kinds = [("deeplake", False)] * lineup.anchors + [(lineup.aimed_kind, True)] * lineup.aimed
        procs = [self._spawn(kind, round_dir, index) for index, (kind, _) in enumerate(kinds)]
        try:
            for index, proc in enumerate(procs):
                _wait_until_ready(proc, f"racer {index} did not start: {_tail(round_dir, index)}")
            aim = self.aims[lineup.aimed_kind]
            offset = aim.next_offset()
            start_at = time.time() + 0.05 + max(0.0, -offset)
            for proc, (_, is_aimed) in zip(procs, kinds):
                proc.stdin.write(f"{start_at + offset if is_aimed else start_at!r}\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            for proc in procs:
                proc.communicate(timeout=120)
        finally:
            for proc in procs:
                proc.kill()
        racers = tuple(_read_racer(round_dir, proc.pid, is_aimed, _tail(round_dir, index))
                       for index, (proc, (_, is_aimed)) in enumerate(zip(procs, kinds)))
        aim.learn(racers)
        return Round(self.rounds, self.store, self.scenario, offset, racers)

    def _reset_lock(self) -> None:
        store = self.backend.store
        if self.scenario == "stale":
            store.write_data(self.lock_path, STALE_LOCK.read_bytes())
        else:
            store.delete_data(self.lock_path)

    def _spawn(self, kind: str, round_dir: Path, index: int) -> subprocess.Popen[str]:
        if kind == "deeplake":
            command = [str(self.deeplake_python), str(HELPERS / "dlrace_deeplake.py"), "race", self.dataset,
                       json.dumps(self._deeplake_creds()), str(round_dir), str(self.hold)]
            env = {**os.environ, **self.env, "PYTHONPATH": ""}
        else:
            command = [sys.executable, str(HELPERS / "dlrace_dlock.py"), self.dataset, str(round_dir), str(self.hold)]
            env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
        return subprocess.Popen(command, env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=open(round_dir / f"racer-{index}.err", "w"))

    def _deeplake(self, command: str) -> str:
        result = subprocess.run([str(self.deeplake_python), str(HELPERS / "dlrace_deeplake.py"), command,
                                 self.dataset, json.dumps(self._deeplake_creds())],
                                env={**os.environ, "PYTHONPATH": ""}, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"Deep Lake could not make {self.dataset}: {result.stderr[-2000:]}")
        return result.stdout

    def _deeplake_creds(self) -> dict[str, str] | None:
        """Deep Lake 3.9 takes an S3 endpoint and keys in its creds argument, not from AWS_ENDPOINT_URL."""
        if not self.dataset.startswith("s3://"):
            return None
        return {"aws_access_key_id": self.env["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": self.env["AWS_SECRET_ACCESS_KEY"],
                "endpoint_url": self.env["AWS_ENDPOINT_URL"]}


def _wait_until_ready(proc: subprocess.Popen[str], failure: str) -> None:
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.strip() == "ready":
            return
    raise RuntimeError(failure)


def _read_racer(round_dir: Path, pid: int, aimed: bool, stderr: str) -> Racer:
    found = list(round_dir.glob(f"*-{pid}.json"))
    if not found:
        raise RuntimeError(f"racer pid {pid} left no record: {stderr}")
    log = json.loads(found[0].read_text())
    if log["kind"] == "dlock":
        job = round_dir / f"dlock-{pid}-job.json"
        held = json.loads(job.read_text())["held"] if job.exists() else None
        writes = tuple((start, end, f"{what} {outcome}") for start, end, what, outcome in log["writes"])
        return Racer("dlock", aimed, pid, log["start_at"], f"exit {log['exit']}", held and tuple(held), (), writes)
    writes = tuple((start, end, "unconditional") for start, end in log["writes"])
    return Racer("deeplake", aimed, pid, log["start_at"], log["outcome"], log["held"] and tuple(log["held"]),
                 tuple(map(tuple, log["reads"])), writes)


def _tail(round_dir: Path, index: int) -> str:
    return (round_dir / f"racer-{index}.err").read_text()[-2000:]


# -- counting ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Tally:
    store: str
    scenario: str
    lineup: Lineup
    rounds: int = 0
    hits: int = 0
    doubles: int = 0
    dlock_wins: int = 0
    deeplake_wins: int = 0

    def add(self, round: Round) -> None:
        self.rounds += 1
        self.hits += round.hit()
        self.doubles += bool(round.double_holders())
        self.dlock_wins += "dlock" in round.winners()
        self.deeplake_wins += "deeplake" in round.winners()


def table(tallies: Sequence[Tally]) -> str:
    lines = ["| store | scenario | racers | rounds | aimed rounds (the aimed write inside Deep Lake's read→write) "
             "| double-holder rounds | dlock wins | Deep Lake wins |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {t.store} | {t.scenario} | {t.lineup} | {t.rounds} | {t.hits} | {t.doubles} | {t.dlock_wins} "
              f"| {t.deeplake_wins} |" for t in tallies]
    return "\n".join(lines)
