"""A real Deep Lake 3.9 process in an aimed race; runs in the Deep Lake virtualenv.

    python dlrace_deeplake.py make DATASET CREDS_JSON         (prints the head commit)
    python dlrace_deeplake.py race DATASET CREDS_JSON ROUND_DIR HOLD

`race` opens the dataset for writing once (lock_timeout 0: LockedException means it
lost), holds it HOLD seconds, and records when it read and wrote its lock file. Only
timing logs are wrapped around the storage provider; Deep Lake's lock protocol
(deeplake/core/lock.py) runs untouched.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable

import deeplake
from deeplake.core.storage import LocalProvider, S3Provider
from deeplake.util.exceptions import LockedException

from dlrace_start import record, wait_for_start

LOCK_NAME = "dataset_lock.lock"  # the head's write lock; the short root locks are other names
lock_io: dict[str, list[Any]] = {"reads": [], "writes": [], "paths": []}


def timed(method: Callable[..., Any], kind: str) -> Callable[..., Any]:
    def logged(provider: Any, path: str, *args: Any) -> Any:
        if not path.endswith(LOCK_NAME):
            return method(provider, path, *args)
        started = time.time()
        try:
            return method(provider, path, *args)
        finally:
            lock_io[kind].append((started, time.time()))
            lock_io["paths"].append(path)

    return logged


def make(dataset: str, creds: dict[str, str] | None) -> None:
    ds = deeplake.empty(dataset, overwrite=True, creds=creds, verbose=False)
    ds.create_tensor("x", htype="generic", dtype="int64")
    ds.x.append(1)
    ds.commit("first")  # the head is no longer the first commit: Deep Lake locks versions/<head>/
    ds.x.append(2)
    ds.flush()
    print(ds.version_state["commit_id"])


def race(dataset: str, creds: dict[str, str] | None, round_dir: str, hold: float) -> None:
    for provider in (LocalProvider, S3Provider):
        provider.__getitem__ = timed(provider.__getitem__, "reads")  # Lock.acquire reads via get()
        provider.__setitem__ = timed(provider.__setitem__, "writes")
    deeplake.load(dataset, read_only=True, verbose=False, creds=creds)  # imports and first connection, no lock
    start_at = wait_for_start()
    held = None
    try:
        ds = deeplake.load(dataset, read_only=False, verbose=False, creds=creds)
        outcome = "held"
    except LockedException:
        outcome = "busy"
    except Exception as exc:  # reported in the round, never a crash of the harness
        outcome = f"error: {type(exc).__name__}: {exc}"
    if outcome == "held":
        got = time.time()
        time.sleep(hold)
        held = (got, time.time())  # before exit, where Deep Lake's atexit hook deletes its lock
    record(round_dir, f"deeplake-{os.getpid()}", kind="deeplake", pid=os.getpid(), start_at=start_at,
           outcome=outcome, held=held, **lock_io)


if __name__ == "__main__":
    command, dataset, creds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if command == "make":
        make(dataset, creds)
    else:
        race(dataset, creds, sys.argv[4], float(sys.argv[5]))
