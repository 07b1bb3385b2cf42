"""Fencing numbers for lock files: a counter beside the lock, raised by conditional writes.

A lock file is deleted on release, so the number cannot live in it alone: it lives in
`dataset_lock.lock.fence` at the dataset's root — one counter for the locks of every
head, since a commit moves the head's lock to a new file and fences must keep growing
across it — a small JSON object created once and then only replaced, conditionally on
the version read, so concurrent raises never hand out one number twice. Releases,
forced removals and takeovers leave it alone.

A holder raises the counter, then rewrites its own lock with the number in it,
conditionally on the lock it holds (FileLease.fence). That order is what makes the
number safe to trust: a holder paused between taking the lock and raising the counter
may still raise it after another process has taken the lock over, but its rewrite then
fails and it gets no number, so every number handed out was raised while its holder
still held the lock, and a later holder's is larger.

Deep Lake 3 never lists a dataset's files to understand them; it reads the keys it knows
(dataset_meta.json, version_control_info.json, dataset_lock.lock, ...), so the extra file
is invisible to it, and dlock's own scans match lock files by their exact name.
"""

from __future__ import annotations

import time

from dlock._version import __version__
from dlock.errors import BackendError, CorruptLock
from dlock.identity import fence_of
from dlock.stores.base import AlreadyExists, Conflict, Store, Stored

SUFFIX = ".fence"
ATTEMPTS = 50  # raises that lose to another raise retry; only holders of this lock contend


def counter_path(lock_path: str) -> str:
    return lock_path + SUFFIX


def raise_fence(store: Store, path: str, target: str) -> int:
    """The counter at `path` raised by one, conditionally; the new value."""
    import json  # off the start-up path of every verb that never raises a fence
    import random

    for attempt in range(ATTEMPTS):
        current = store.read(path)
        value = read_counter(current, store.url(path)) + 1
        data = json.dumps({"fence": value, "tool": f"dlock/{__version__}"}, separators=(",", ":")).encode()
        try:
            if current is None:
                store.create(path, data)
            else:
                store.replace(path, data, current)
            return value
        except (AlreadyExists, Conflict):
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise BackendError(f"{target}: the fencing counter {store.url(path)} kept changing under dlock; try again.")


def read_counter(stored: Stored | None, where: str) -> int:
    """The counter's value; 0 when there is none yet. A counter that is not one is never
    guessed at: a wrong guess could hand out a number twice."""
    if stored is None:
        return 0
    import json

    value: object = None
    if stored.odd is None and stored.size is None:
        try:
            document = json.loads(stored.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            document = None
        value = document.get("fence") if isinstance(document, dict) else None
    fence = fence_of(value)
    if fence is None or fence == 2**63 - 1:
        raise CorruptLock(
            f"the fencing counter {where} is not one dlock wrote, so no fence can be given out. "
            'Inspect it, or write {"fence": N} into it with N above every fence given before.')
    return fence

