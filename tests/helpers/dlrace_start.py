"""The process side of an aimed race (tests/helpers/dlrace.py): stdlib only, so that the
Deep Lake virtualenv's interpreter and dlock's both import it.

A racer prints "ready" once its imports are done, reads its absolute start time
(time.time()) from stdin, and writes what it saw to one JSON file in the round's directory.
"""

from __future__ import annotations

import json
import os
import sys
import time

SPIN = 0.003  # busy-wait the last few ms: a sleep overshoots by a scheduler tick


def wait_for_start() -> float:
    """Say "ready", then return at the start time the harness sends."""
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    if start_at - time.time() > SPIN:
        time.sleep(start_at - time.time() - SPIN)
    while time.time() < start_at:
        pass
    return start_at


def record(round_dir: str, name: str, **fields: object) -> None:
    """One racer's log of the round, written whole (a rename) so the harness never reads half of it."""
    path = os.path.join(round_dir, f"{name}.json")
    with open(path + ".tmp", "w") as handle:
        json.dump(fields, handle)
    os.replace(path + ".tmp", path)
