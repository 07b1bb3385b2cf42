"""Who and where this process is, and whether a holder's process still lives."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import threading
import time
from typing import Mapping

from dlock._version import __version__
from dlock.model import Holder


# Who and where this process is does not change while it runs; each lookup is a system call
# that gives up the GIL, and with several threads taking locks that hands the interpreter
# to another thread at every acquisition (a third of the time of 8 writer threads).
@functools.cache
def current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@functools.cache
def hostname() -> str:
    """socket.gethostname() without importing socket: both are gethostname(2), which is uname's nodename."""
    return os.uname().nodename


def random_bytes(count: int) -> bytes:
    """Bytes from os.urandom, drawn 4 KiB at a time per thread: one system call (which gives up
    the GIL) per 256 tokens, and no mutex that a pre-empted thread could hold while others
    queue behind it. A forked child never hands out its parent's."""
    pool: bytearray | None = getattr(_ENTROPY, "pool", None)
    if pool is None or len(pool) < count:
        pool = _ENTROPY.pool = bytearray(os.urandom(max(4096, count)))
    taken = bytes(pool[:count])
    del pool[:count]
    return taken


_ENTROPY = threading.local()


def _forget_in_child() -> None:
    _ENTROPY.__dict__.clear()  # the forking thread's pool: the only thread a child has


os.register_at_fork(after_in_child=_forget_in_child)


def pid_alive(pid: int) -> bool:
    """Only meaningful on the holder's own host: pids repeat across hosts and containers."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def holder_payload(
    token: str, ttl: float, note: str | None, created: float | None = None, now: float | None = None,
    fence: int | None = None,
) -> dict[str, object]:
    """Who holds a lock, as dlock stores it (a lock file's JSON tag, a ZooKeeper node's data).
    `owner` is the token that proves ownership; `fence` the acquisition's fencing number
    once it has one; the rest is for people."""
    now = time.time() if now is None else now
    fenced: dict[str, object] = {} if fence is None else {"fence": fence}
    return fenced | {
        "owner": token,
        "host": hostname(),
        "pid": os.getpid(),
        "user": current_user(),
        "created": created if created is not None else now,
        "written": now,
        "ttl": ttl,
        "note": note or "",
        "tool": f"dlock/{__version__}",
    }


def holder_from_payload(payload: Mapping[str, object], base: Holder) -> Holder:
    """`base` completed from a payload that holder_payload wrote (or anything claiming to be
    one: every field is checked for its type, never trusted)."""
    host = text(payload.get("host"))
    pid = payload.get("pid")
    pid = pid if isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 2**31 else None
    this_machine = host == hostname()
    return dataclasses.replace(
        base,
        host=host,
        pid=pid,
        this_machine=this_machine,
        user=text(payload.get("user")),
        note=text(payload.get("note")) or None,
        created=number(payload.get("created")) or base.created,
        tool=text(payload.get("tool")) or base.tool,
        pid_alive=pid_alive(pid) if this_machine and pid else None,
    )


def fence_of(value: object) -> int | None:
    """A fencing number from stored data: a positive integer below 2**63, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


def text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def number(value: object) -> float | None:
    """A finite number from stored JSON, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None



def process_started(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot, or None when it is not running
    (gone, or a zombie nobody has reaped) or this is no Linux. A pid is reused once its
    process is gone, and the start time tells the two apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain anything, spaces too.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        state, started = fields[0], int(fields[19])  # fields 3 and 22 of the whole line
    except (IndexError, ValueError):
        return None
    return None if state in (b"Z", b"X", b"x") else started


def process_running(pid: int) -> bool:
    """Is `pid` a running process here (not gone, not a zombie)? Linux knows; elsewhere pid_alive."""
    if not os.path.isdir("/proc/self"):
        return pid_alive(pid)
    return process_started(pid) is not None
