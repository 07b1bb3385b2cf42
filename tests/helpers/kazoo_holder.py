"""A plain kazoo program holding a lock the way Deep Lake's docs show (zk.WriteLock).

    python kazoo_holder.py HOSTS PATH write|read|lock IDENTIFIER

Prints "held" once it holds the lock, then holds until its stdin closes, then releases.
"""

import sys

from kazoo.client import KazooClient

hosts, path, kind, identifier = sys.argv[1:5]
zk = KazooClient(hosts=hosts, timeout=5)
zk.start(timeout=10)
recipe = {"write": zk.WriteLock, "read": zk.ReadLock, "lock": zk.Lock}[kind]
lock = recipe(path, identifier)
lock.acquire(timeout=60)
print("held", flush=True)
sys.stdin.read()
lock.release()
zk.stop()
zk.close()
