"""ZooKeeper: acquire+release latency and hand-off latency (release -> a waiting process
acquires), dlock against raw kazoo in the same run, on a standalone server on loopback.

    python bench/zookeeper.py [--runs 200] [--handoffs 30]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import dlock  # noqa: E402
from servers.zookeeper import _new_server, _wait_serving  # noqa: E402
from timing import cycles, handoff_seconds, latency_arguments, median_ms, print_table  # noqa: E402

WAITER = r"""
import sys, time
kind, hosts, path = sys.argv[1:4]
if kind == "kazoo":
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=hosts); zk.start()
    print("ready", flush=True)
    lock = zk.Lock(path, "waiter"); lock.acquire()
    print(time.time(), flush=True); lock.release(); zk.stop()
else:
    import dlock
    print("ready", flush=True)
    lease = dlock.acquire(f"zk://{hosts}{path}", timeout=-1)
    print(time.time(), flush=True); lease.release()
"""


def handoff(kind: str, hosts: str, runs: int) -> float:
    """The holder releases at t0; the waiting process prints when it holds (t1)."""
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=hosts)
    zk.start()
    samples = []
    for _ in range(runs):
        path = f"/bench/handoff-{uuid.uuid4().hex[:8]}"
        holder = zk.Lock(path, "holder")
        holder.acquire()
        waiter = subprocess.Popen([sys.executable, "-c", WAITER, kind, hosts, path], stdout=subprocess.PIPE, text=True)
        assert waiter.stdout.readline().strip() == "ready"
        deadline = time.time() + 10
        while len(zk.get_children(path)) < 2 and time.time() < deadline:  # the waiter is in line
            time.sleep(0.01)
        time.sleep(0.2)
        samples.append(handoff_seconds(waiter, holder.release))
    zk.stop()
    return median_ms(samples)


def main() -> None:
    args = latency_arguments()
    server = _new_server(Path(tempfile.mkdtemp()), "bench")
    server.start()
    try:
        assert _wait_serving([server])
        hosts = server.address
        from kazoo.client import KazooClient

        zk = KazooClient(hosts=hosts)
        zk.start()

        def kazoo_cycle() -> None:
            lock = zk.Lock("/bench/cycle-kazoo", "bench")
            lock.acquire()
            lock.release()

        def kazoo_new_session_cycle() -> None:
            client = KazooClient(hosts=hosts)
            client.start()
            lock = client.Lock("/bench/cycle-kazoo-new", "bench")
            lock.acquire()
            lock.release()
            client.stop()
            client.close()

        def dlock_cycle() -> None:
            dlock.acquire(f"zk://{hosts}/bench/cycle-dlock").release()

        rows = [
            ("acquire+release", "kazoo Lock, one long-lived session", cycles(args.runs, kazoo_cycle)),
            ("acquire+release", "kazoo Lock, new session each time", cycles(args.runs, kazoo_new_session_cycle)),
            ("acquire+release", "dlock.acquire().release() (a session per lease)", cycles(args.runs, dlock_cycle)),
            ("hand-off across processes", "kazoo Lock waiter", handoff("kazoo", hosts, args.handoffs)),
            ("hand-off across processes", "dlock.acquire(timeout=-1) waiter", handoff("dlock", hosts, args.handoffs)),
        ]
        zk.stop()
    finally:
        server.stop()
    print_table("ZooKeeper 3.8 standalone", rows)

if __name__ == "__main__":
    main()
