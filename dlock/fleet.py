"""Which of the locks found under a root `clean` removes: the policy, over any backend's scan."""

from __future__ import annotations

import time

from dlock.model import FleetLock, FleetReport, State

DEFAULT_DEPTH = 8
# Deep Lake writes its lock in place, so a reader can catch it half-written: a
# corrupt lock is removed only once it has not changed for this long.
CORRUPT_GRACE = 60.0


def removable(report: FleetReport, older_than: float | None = None, now: float | None = None) -> list[FleetLock]:
    """Stale locks, corrupt ones that have not changed for a minute, and with `older_than`
    held locks whose holder has not written them for that long. Never another held lock,
    and never a ZooKeeper contender (its session's heartbeats are its refreshes)."""
    now = time.time() if now is None else now
    chosen = []
    if report.kind.session_bound:
        return []  # alive by definition: an ephemeral node ends with its holder's session
    for entry in report.locks:
        lock = entry.lock
        if lock.state is State.STALE:
            chosen.append(entry)
        elif lock.state is State.CORRUPT:
            if lock.store_modified is None or now - lock.store_modified >= CORRUPT_GRACE:
                chosen.append(entry)
        elif lock.state is State.HELD and older_than is not None and lock.age is not None and lock.age >= older_than:
            chosen.append(entry)
    return chosen


