"""Several targets of one `status` or `wait`, checked concurrently with a bound.

Each call runs in a daemon thread: a command that stops early (an error, a timeout,
Ctrl-C) exits without waiting for calls still in flight, such as a ZooKeeper connect
that has --zk-timeout left to run.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT = 16  # targets checked at once: enough for 200 unreachable hosts in seconds, few enough for any server


class Outcome(Generic[R]):
    """What one call returned, or the exception it raised."""

    def __init__(self, index: int, value: R | None = None, error: BaseException | None = None) -> None:
        self.index, self.value, self.error = index, value, error

    def result(self) -> R:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class Fanout(Generic[T, R]):
    """`work(item)` for every item, at most `limit` at once, started in the items' order.
    Leaving the `with` block sets `stopped`: no further call starts, and a long call can
    watch it (see wait's on_wait) to end early."""

    def __init__(self, work: Callable[[T], R], items: Sequence[T], limit: int = IN_FLIGHT,
                 stopped: threading.Event | None = None) -> None:
        self.stopped = stopped or threading.Event()
        self._work, self._items = work, items
        self._next = 0
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._finished: list[Outcome[R]] = []
        for _ in range(min(limit, len(items))):
            threading.Thread(target=self._run, name="dlock-target", daemon=True).start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            with self._lock:
                index, self._next = self._next, self._next + 1
            if index >= len(self._items):
                return
            try:
                outcome: Outcome[R] = Outcome(index, value=self._work(self._items[index]))
            except BaseException as exc:  # handed to the caller, who decides
                outcome = Outcome(index, error=exc)
            with self._done:
                self._finished.append(outcome)
                self._done.notify()

    def __enter__(self) -> Fanout[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()

    def as_completed(self) -> Iterator[Outcome[R]]:
        """Each outcome as it arrives."""
        for count in range(len(self._items)):
            with self._done:
                while len(self._finished) <= count:
                    self._done.wait()  # a signal (Ctrl-C, SIGTERM) interrupts it
                outcome = self._finished[count]
            yield outcome

    def in_order(self) -> list[Outcome[R]]:
        """Every outcome, in the items' order."""
        outcomes: list[Outcome[R] | None] = [None] * len(self._items)
        for outcome in self.as_completed():
            outcomes[outcome.index] = outcome
        return [outcome for outcome in outcomes if outcome is not None]
