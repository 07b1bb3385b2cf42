"""The Python API (DESIGN 6). The CLI is rendering over these calls."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, TypedDict, TypeVar

from typing_extensions import Unpack

from dlock.backends.base import Backend, Options
from dlock.durations import format_duration
from dlock.errors import LockBusy, UsageError
from dlock.lease import Lease
from dlock.model import LockInfo, LockStatus, State
from dlock.targets import open_backend

if TYPE_CHECKING:
    from dlock.fleet import FleetReport

DEFAULT_TTL = 300.0
FIRST_DELAY, MAX_DELAY, BACKOFF = 0.05, 1.0, 1.5

# on_wait(busy, waited_seconds): called before each pause while waiting (a spinner);
# busy.holder is the LockInfo or LockStatus that was found held.
WaitCallback = Callable[[LockBusy, float], None]


class TargetOptions(TypedDict, total=False):
    """Keywords every call accepts, as the CLI's options do.

    storage_options: passed to the fsspec filesystem (`-o KEY=VALUE`), e.g. endpoint_url.
    branch: the Deep Lake branch whose head is locked (default "main").
    commit: lock this Deep Lake commit's version directly.
    validity: seconds a 14-byte (pre-3.9 Deep Lake) lock stays valid (default 300).
    zk_timeout: ZooKeeper connect, request and session timeout in seconds (default 10).
    zk_auth: ZooKeeper digest credentials, "user:password".
    """

    storage_options: Mapping[str, str] | None
    branch: str
    commit: str | None
    validity: float | None
    zk_timeout: float
    zk_auth: str | None


def options(**given: Unpack[TargetOptions]) -> Options:
    """The backend Options for these keywords (see TargetOptions)."""
    return Options(
        dict(given.get("storage_options") or {}),
        given.get("branch", "main"),
        given.get("commit"),
        given.get("validity"),
        given.get("zk_timeout", 10.0),
        given.get("zk_auth"),
    )


def status(target: str, **target_options: Unpack[TargetOptions]) -> LockStatus:
    """Every lock of `target` (a dataset path/URL or zk://...), judged now."""
    with open_backend(target, options(**target_options)) as backend:
        return backend.status()


def acquire(
    target: str,
    *,
    timeout: float = 0,
    ttl: float = DEFAULT_TTL,
    note: str = "",
    shared: bool = False,
    on_wait: WaitCallback | None = None,
    **target_options: Unpack[TargetOptions],
) -> Lease:
    """Take the lock of `target` and return its Lease.

    `timeout` 0 tries once, a positive value waits that many seconds, -1 waits forever;
    raises LockBusy when the lock stays held. The lease is not refreshed unless you call
    `lease.keep_alive()` (or use `dlock.lock`).
    """
    if ttl <= 0:
        raise UsageError(f"{target}: ttl must be more than zero seconds.")
    backend = open_backend(target, options(**target_options))
    try:
        handle = _retry_while_busy(
            backend, lambda: backend.try_acquire(ttl=ttl, note=note, shared=shared), timeout, on_wait
        )
    except BaseException:
        backend.close()
        raise
    return Lease(backend, handle)


def refresh(target: str, token: str, *, ttl: float = DEFAULT_TTL, **target_options: Unpack[TargetOptions]) -> Lease:
    """Extend a lock held under `token` (perhaps by another process); raises NotOwner if not ours."""
    backend = open_backend(target, options(**target_options))
    lease = Lease(backend, backend.adopt(token, ttl=ttl))
    lease.refresh()
    return lease


def release(
    target: str,
    *,
    token: str | None = None,
    force: bool = False,
    if_stale: bool = False,
    seen: LockInfo | None = None,
    include_waiters: bool = False,
    **target_options: Unpack[TargetOptions],
) -> list[LockInfo]:
    """Release the lock of `target`.

    With `token`: only if that token owns it (NotOwner otherwise). With `if_stale`: only a
    stale lock. With `force`: whoever holds it, without asking (the CLI asks). `seen`
    refuses the removal if the lock changed since it was shown. Returns what was removed.
    """
    chosen = sum(bool(x) for x in (token, force, if_stale))
    if chosen != 1:
        raise UsageError(f"{target}: release needs exactly one of a token, force or if_stale.")
    with open_backend(target, options(**target_options)) as backend:
        if token:
            handle = backend.adopt(token, ttl=DEFAULT_TTL)
            info = backend.status().primary
            handle.release()
            return [info] if info else []
        return backend.remove(force=force, if_stale=if_stale, seen=seen, include_waiters=include_waiters)


def wait(target: str, timeout: float | None = None, *, on_wait: WaitCallback | None = None, **target_options: Unpack[TargetOptions]) -> bool:
    """Block until `target` is free (absent or stale); False when `timeout` seconds pass first."""
    with open_backend(target, options(**target_options)) as backend:

        def check() -> LockStatus:
            current = backend.status()
            if current.state is State.HELD:
                raise LockBusy(f"{target} is locked.", holder=current)
            return current

        try:
            _retry_while_busy(backend, check, -1 if timeout is None else timeout, on_wait)
        except LockBusy:
            return False
        return True


@contextlib.contextmanager
def lock(
    target: str, *, timeout: float = -1, ttl: float = DEFAULT_TTL, note: str = "", shared: bool = False, **target_options: Unpack[TargetOptions]
) -> Iterator[Lease]:
    """Hold the lock of `target` for a `with` block: acquire, refresh in the background, release.

    `timeout` -1 (default) waits forever. Check `lease.lost` in long loops: once it is
    True another writer may hold the lock.
    """
    lease = acquire(target, timeout=timeout, ttl=ttl, note=note, shared=shared, **target_options)
    try:
        lease.keep_alive()
        yield lease
    finally:
        with contextlib.suppress(Exception):
            lease.release()
        lease.backend.close()


T = TypeVar("T")


def _retry_while_busy(backend: Backend, attempt: Callable[[], T], timeout: float, on_wait: WaitCallback | None) -> T:
    """Call `attempt` until it does not raise LockBusy; back off from 50 ms to 1 s."""
    started = time.monotonic()
    delay = FIRST_DELAY
    while True:
        try:
            return attempt()
        except LockBusy as busy:
            waited = time.monotonic() - started
            if timeout >= 0 and waited >= timeout:
                if timeout > 0:
                    raise LockBusy(f"{busy} Gave up after {format_duration(timeout)}.", holder=busy.holder) from None
                raise
            if on_wait is not None:
                on_wait(busy, waited)
            pause = delay if timeout < 0 else min(delay, max(0.0, timeout - waited))
            backend.wait_for_change(pause)
            delay = min(MAX_DELAY, delay * BACKOFF)


def scan_locks(
    root: str, *, depth: int = 8, on_progress: Callable[[int, int], None] | None = None, **target_options: Unpack[TargetOptions]
) -> FleetReport:
    """Every dataset lock under `root` (a directory tree or bucket prefix), judged now."""
    from dlock import fleet
    from dlock.backends.lockfile import LockFileBackend

    with open_backend(root, options(**target_options)) as backend:
        scan_tree = getattr(backend, "scan_tree", None)
        if scan_tree is not None:  # ZooKeeper: a subtree of lock nodes
            return scan_tree(depth=depth, on_progress=on_progress)  # type: ignore[no-any-return]
        if not isinstance(backend, LockFileBackend):
            raise UsageError(f"{root}: listing is not supported for this kind of target.")
        return fleet.scan(root, depth=depth, backend=backend, on_progress=on_progress)
