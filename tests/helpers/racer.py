"""One contender in a race: wait for the start time, try to acquire once, print the outcome.

    python racer.py TARGET START_AT [TTL [HOLD]]

prints "won TOKEN" or "busy". With HOLD, a winner prints "won TOKEN FENCE" and releases
after HOLD seconds, or never (its lock left to go stale) when HOLD is "never"; without
it, the winner's process just ends.
"""

import sys
import time

import dlock

target, start_at = sys.argv[1], float(sys.argv[2])
ttl = float(sys.argv[3]) if len(sys.argv) > 3 else 300
hold = sys.argv[4] if len(sys.argv) > 4 else None
time.sleep(max(0.0, start_at - time.time()))
try:
    lease = dlock.acquire(target, ttl=ttl)
except dlock.LockBusy:
    print("busy")
else:
    if hold is None:
        print("won " + lease.token)
    else:
        print(f"won {lease.token} {lease.fence}", flush=True)
        if hold != "never":
            time.sleep(float(hold))
            lease.release()
