"""A plain redis-py program that runs the counter's increment under `redis.lock.Lock`.

    python redis_py_counter.py URL NAME ROUNDS COUNTER

Each round takes `r.lock(NAME, timeout=30, blocking_timeout=60)` and runs counter.py on
COUNTER while holding it (counter.py checks DLOCK_LOCK_HELD, which the lock stands for).
"""

import os
import subprocess
import sys
from pathlib import Path

import redis

url, name, rounds, counter = sys.argv[1:5]
client = redis.Redis.from_url(url)
increment = [sys.executable, str(Path(__file__).with_name("counter.py")), counter]
for _ in range(int(rounds)):
    with client.lock(name, timeout=30, blocking_timeout=60):
        subprocess.run(increment, env={**os.environ, "DLOCK_LOCK_HELD": "1"}, check=True)
