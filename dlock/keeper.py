"""One thread per process schedules the refreshes and ownership checks of every kept
lease (dlock.lease.Lease.keep_alive).

A thread per lease cost every short lease (a dlock.writer session of a millisecond) a
thread start and a join, and each of those hands the interpreter to another thread:
with 8 writer threads, sessions per second halved. Here keeping a lease is a push onto
a heap, and releasing it is setting its stop event: a stopped lease is dropped when it
comes due, without waking anyone. A tick that is due runs in a thread of its own, so a
slow store never delays another lease's check.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import threading
import time
from typing import Callable

# A tick does one round (refresh or confirm) and returns when it is next due (monotonic
# seconds), or None when the lease needs no more keeping.
Tick = Callable[[], "float | None"]


class Keeper:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: list[tuple[float, int, Tick, threading.Event]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = -math.inf  # when the scheduling thread wakes next (-inf: it is not asleep)

    def schedule(self, when: float, tick: Tick, stopped: threading.Event) -> None:
        """Run `tick` at `when` (time.monotonic()), unless `stopped` is set by then."""
        with self._changed:
            heapq.heappush(self._due, (when, next(self._order), tick, stopped))
            if self._thread is None:
                self._thread = threading.Thread(target=self._schedule, name="dlock-keeper", daemon=True)
                self._thread.start()
            elif when < self._wakes_at:
                self._changed.notify()

    def _schedule(self) -> None:
        while True:
            with self._changed:
                while True:
                    while self._due and self._due[0][3].is_set():
                        heapq.heappop(self._due)  # released before it came due: dropped now, not woken for
                    if self._due and self._due[0][0] <= time.monotonic():
                        break
                    self._wakes_at = self._due[0][0] if self._due else math.inf
                    self._changed.wait(None if not self._due else max(0.0, self._wakes_at - time.monotonic()))
                self._wakes_at = -math.inf
                _, _, tick, stopped = heapq.heappop(self._due)
            threading.Thread(target=self._run, args=(tick, stopped), name="dlock-refresh", daemon=True).start()

    def _run(self, tick: Tick, stopped: threading.Event) -> None:
        when = tick()
        if when is not None:
            self.schedule(when, tick, stopped)


KEEPER = Keeper()


def _forget_in_child() -> None:
    """A forked child has no scheduling thread, and its leases are its own to keep."""
    global KEEPER
    KEEPER = Keeper()


os.register_at_fork(after_in_child=_forget_in_child)
