"""Holding a lock around a child process (`run`) or until a signal (`acquire --hold`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import Any, Callable, Iterator, Sequence, TypeVar

from dlock.cli import output
from dlock.cli.exitcodes import LOST, OK
from dlock.errors import LockLost
from dlock.lease import Lease

FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)


def run_locked(lease: Lease, command: Sequence[str], grace: float, check_interval: float) -> int:
    """Run `command` while `lease` is refreshed; its exit status, or 3 if the lock was lost."""
    try:
        fence = lease.fence
    except LockLost as exc:
        output.error(f"lock lost before {command[0]!r} started: {exc}")
        return LOST
    except BaseException:
        _release_quietly(lease)
        raise
    env = dict(os.environ, DLOCK_TARGET=lease.target, DLOCK_TOKEN=lease.token, DLOCK_FENCE=str(fence),
               DLOCK_LOCK_HELD="1")
    # On a terminal the child shares our process group, so Ctrl-C reaches it directly
    # (and it can read the terminal); otherwise it gets its own group and we forward.
    own_group = not sys.stdin.isatty()
    try:
        child = subprocess.Popen(
            list(command), env=env, process_group=0 if own_group else None, preexec_fn=_die_with_parent
        )
    except OSError as exc:
        _release_quietly(lease)
        output.error(f"cannot run {command[0]!r}: {exc.strerror or exc}.")
        return 127 if isinstance(exc, FileNotFoundError) else 126

    lost = threading.Event()

    def on_lost(reason: str) -> None:
        lost.set()
        output.error(f"lock lost: {reason} Stopping {command[0]!r} (SIGTERM, SIGKILL after {grace:g}s).")
        _signal(child, signal.SIGTERM)
        killer = threading.Timer(grace, _signal, (child, signal.SIGKILL))
        killer.daemon = True
        killer.start()

    def forward(signum: int, frame: object) -> None:
        if signum != signal.SIGINT or own_group:
            _signal(child, signum)

    with _handling(FORWARDED, forward):
        lease.keep_alive(on_lost, check_interval)
        returncode = child.wait()
    if lost.is_set() or not _released(lease, f"lock lost while {command[0]!r} ran: "):
        return LOST
    return 128 - returncode if returncode < 0 else returncode


def hold_until_signal(lease: Lease, check_interval: float) -> int:
    """`acquire --hold`: refresh until SIGINT/SIGTERM/SIGHUP, then release; 3 if lost."""
    stop = threading.Event()
    lost = threading.Event()

    def on_lost(reason: str) -> None:
        output.error(f"lock lost: {reason}")
        lost.set()
        stop.set()

    with _handling(FORWARDED[:3], lambda *_: stop.set()):
        lease.keep_alive(on_lost, check_interval)
        while not stop.wait(0.5):
            pass
    if lost.is_set() or not _released(lease, ""):
        return LOST
    output.say(f"Released {lease.path}.")
    return OK


T = TypeVar("T")


def until_signal(work: Callable[[threading.Event], T]) -> T:
    """Run `work` with an event that SIGINT, SIGTERM or SIGHUP sets (`guard` stops on it)."""
    stop = threading.Event()
    with _handling(FORWARDED[:3], lambda *_: stop.set()):
        return work(stop)


@contextlib.contextmanager
def _handling(signums: Sequence[int], handler: Callable[[int, Any], None]) -> Iterator[None]:
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _released(lease: Lease, context: str) -> bool:
    """Release at the end of holding; False (said on stderr) if the lock was no longer ours."""
    try:
        lease.release()
    except LockLost as exc:
        output.error(f"{context}{exc}")
        return False
    return True


def _die_with_parent() -> None:
    """In the child before exec: if dlock is killed (SIGKILL, OOM), the command gets SIGTERM
    instead of writing on after the lock stops being refreshed (Linux PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal(child: subprocess.Popen[bytes], signum: int) -> None:
    if child.poll() is None:
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass


def _release_quietly(lease: Lease) -> None:
    try:
        lease.release()
    except Exception as exc:  # the lock expires by itself; say why it may linger
        output.warn(f"could not release {lease.path}: {exc}")
