"""A plain redis-py program holding `redis.lock.Lock` (r.lock(name, timeout=...)).

    python redis_py_holder.py URL NAME TIMEOUT_SECONDS|none

Prints "held" once it holds the lock, then holds until its stdin closes, then releases.
"""

import sys

import redis

url, name, timeout = sys.argv[1:4]
client = redis.Redis.from_url(url)
lock = client.lock(name, timeout=None if timeout == "none" else float(timeout), blocking_timeout=60)
assert lock.acquire()
print("held", flush=True)
sys.stdin.read()
lock.release()
