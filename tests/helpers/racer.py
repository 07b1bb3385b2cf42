"""One contender in a race: wait for the start time, try to acquire once, print the outcome.

    python racer.py TARGET START_AT [TTL]
"""

import sys
import time

import dlock

target, start_at = sys.argv[1], float(sys.argv[2])
ttl = float(sys.argv[3]) if len(sys.argv) > 3 else 300
time.sleep(max(0.0, start_at - time.time()))
try:
    lease = dlock.acquire(target, ttl=ttl)
except dlock.LockBusy:
    print("busy")
else:
    print("won " + lease.token)
