"""The job `dlock run` guards in an aimed race: it believes it holds the lock while it runs.

    python dlrace_job.py ROUND_DIR HOLD
"""

from __future__ import annotations

import os
import sys
import time

from dlrace_start import record

round_dir, hold = sys.argv[1], float(sys.argv[2])
started = time.time()
time.sleep(hold)
record(round_dir, f"dlock-{os.getppid()}-job", held=(started, time.time()))
