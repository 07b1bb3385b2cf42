"""Acquire, read the fence, release; N times, printing each fence.

    python fence_cycles.py TARGET N
"""

import sys

import dlock

for _ in range(int(sys.argv[2])):
    with dlock.acquire(sys.argv[1], ttl=60) as lease:
        print(lease.fence, flush=True)
