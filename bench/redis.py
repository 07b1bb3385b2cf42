"""Redis: acquire+release latency and hand-off latency (release -> a waiting process
acquires), dlock against redis-py's Lock in the same run, on a redis-server on loopback;
a redis-py release wakes a dlock waiter by polling, then by keyspace notifications.

    python bench/redis.py [--runs 200] [--handoffs 30]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's own directory comes first and its name would shadow redis-py:
# it goes last.
sys.path = [str(ROOT), str(ROOT / "tests")] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.append(str(ROOT / "bench"))

import redis  # noqa: E402

import dlock  # noqa: E402
from servers._util import free_port  # noqa: E402
from servers.redis import RedisServer  # noqa: E402
from timing import cycles, handoff_seconds, latency_arguments, median_ms, print_table  # noqa: E402

WAITER = r"""
import sys, time
kind, url, key = sys.argv[1:4]
if kind == "redis-py":
    import redis
    lock = redis.Redis.from_url(url).lock(key, timeout=60)
    print("ready", flush=True)
    lock.acquire()
    print(time.time(), flush=True); lock.release()
else:
    import dlock
    print("ready", flush=True)
    lease = dlock.acquire(f"{url}/0/{key}", timeout=-1)
    print(time.time(), flush=True); lease.release()
"""


def handoff(kind: str, url: str, releaser: str, runs: int) -> float:
    """The holder (redis-py Lock or dlock) releases at t0; the waiting process prints when it holds (t1)."""
    client = redis.Redis.from_url(url)
    samples = []
    for _ in range(runs):
        key = f"bench/handoff-{uuid.uuid4().hex[:8]}"
        if releaser == "dlock":
            holder = dlock.acquire(f"{url}/0/{key}")
            release = holder.release
        else:
            lock = client.lock(key, timeout=60)
            lock.acquire()
            release = lock.release
        waiter = subprocess.Popen([sys.executable, "-c", WAITER, kind, url, key], stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert waiter.stdout is not None and waiter.stdout.readline().strip() == "ready"
        time.sleep(1.5)  # the waiter has tried and is waiting (dlock's backoff reaches its 1 s cap later)
        samples.append(handoff_seconds(waiter, release))
    client.close()
    return median_ms(samples)


def main() -> None:
    args = latency_arguments()
    server = RedisServer(free_port(), Path(tempfile.mkdtemp()))
    assert server.start()
    try:
        url = server.url
        client = redis.Redis.from_url(url)
        version = client.info()["redis_version"]

        def redis_py_cycle() -> None:
            lock = client.lock("bench/cycle-redis-py", timeout=300)
            lock.acquire()
            lock.release()

        def dlock_cycle() -> None:
            dlock.acquire(f"{url}/0/bench/cycle-dlock").release()

        rows = [
            ("acquire+release", "redis-py Lock, one long-lived client", cycles(args.runs, redis_py_cycle)),
            ("acquire+release", "dlock.acquire().release() (a connection per lease)", cycles(args.runs, dlock_cycle)),
            ("hand-off across processes", "dlock releases, dlock waiter", handoff("dlock", url, "dlock", args.handoffs)),
            ("hand-off across processes", "redis-py releases, redis-py waiter", handoff("redis-py", url, "redis-py", args.handoffs)),
            ("hand-off across processes", "redis-py releases, dlock waiter (no notifications: polls)",
             handoff("dlock", url, "redis-py", args.handoffs)),
        ]
        # The bench's own server; dlock only reads this setting.
        client.config_set("notify-keyspace-events", "Kgx")
        rows.append(("hand-off across processes", "redis-py releases, dlock waiter (keyspace notifications Kgx)",
                     handoff("dlock", url, "redis-py", args.handoffs)))
        client.close()
    finally:
        server.stop()
    print_table(f"Redis {version}", rows)

if __name__ == "__main__":
    main()
