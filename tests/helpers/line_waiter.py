"""A process that waits for a lock, holds it a while, and says when.

    python line_waiter.py TARGET HOLD_SECONDS [LOOP_SECONDS]

prints "waiting" once imported, then "got EPOCH" when it holds the lock (and releases it
after HOLD_SECONDS). With LOOP_SECONDS it instead takes the lock, holds it HOLD_SECONDS and
releases it, again and again for that long (a holder of short sessions that comes back at
once), and prints "looped N".
"""

import sys
import time

import dlock

target, hold = sys.argv[1], float(sys.argv[2])
print("waiting", flush=True)
if len(sys.argv) > 3:
    until, sessions = time.monotonic() + float(sys.argv[3]), 0
    while time.monotonic() < until:
        lease = dlock.acquire(target, timeout=-1)
        time.sleep(hold)
        lease.release()
        sessions += 1
    print(f"looped {sessions}", flush=True)
else:
    lease = dlock.acquire(target, timeout=-1)
    print(f"got {time.time()}", flush=True)
    time.sleep(hold)
    lease.release()
