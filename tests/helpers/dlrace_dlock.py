"""A `dlock run DATASET --timeout 0 -- <job>` process in an aimed race.

    python dlrace_dlock.py DATASET ROUND_DIR HOLD

dlock's command is imported and its store warmed up (a status read) before the start,
so that the start lands where it is aimed; then the real command runs in this process,
as the `dlock` script would run it. Timing logs are wrapped around the store's
conditional writes (create, replace); the job (dlrace_job.py) records when it ran.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from dlock.stores.s3 import S3Store
from dlock.cli import app, main

from dlrace_start import record, wait_for_start

JOB = Path(__file__).with_name("dlrace_job.py")
LOCK_NAME = "dataset_lock.lock"
conditional_writes: list[tuple[float, float, str, str]] = []


def timed(method: Callable[..., Any], what: str) -> Callable[..., Any]:
    def logged(*args: Any, **kwargs: Any) -> Any:
        # The lock's path is the second argument of each: link(src, dst), replace(src, dst),
        # S3Store.create(self, path, data), S3Store.replace(self, path, data, expected).
        if not str(args[1]).endswith(LOCK_NAME):
            return method(*args, **kwargs)
        started, outcome = time.time(), "ok"
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            outcome = type(exc).__name__
            raise
        finally:
            conditional_writes.append((started, time.time(), what, outcome))

    return logged


def dlock_command(*args: str) -> object:
    """Its exit status: the `dlock` script's main() in this process."""
    sys.argv = ["dlock", *args]
    try:
        main()
    except SystemExit as exit:
        return exit.code
    return 0


def race(dataset: str, round_dir: str, hold: float) -> None:
    app._exit = sys.exit  # two commands in one process: dlock's own fast exit would end it after the first
    # The moment a write lands: on local disk the link()/rename() into place, on S3 the PUT.
    os.link = timed(os.link, "link")
    os.replace = timed(os.replace, "rename")
    S3Store.create = timed(S3Store.create, "create")
    S3Store.replace = timed(S3Store.replace, "replace")
    dlock_command("status", dataset)  # the command's lazy imports and the store's first connection
    start_at = wait_for_start()
    code = dlock_command("run", dataset, "--timeout", "0", "--", sys.executable, str(JOB), round_dir, str(hold))
    record(round_dir, f"dlock-{os.getpid()}", kind="dlock", pid=os.getpid(), start_at=start_at, exit=code,
           writes=conditional_writes)


if __name__ == "__main__":
    race(sys.argv[1], sys.argv[2], float(sys.argv[3]))
