"""The Python API: status, acquire, refresh, release, wait, lock, list and clean. Every CLI verb
is a call here plus rendering."""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, TypedDict, TypeVar, Union

if TYPE_CHECKING:
    from typing_extensions import Unpack  # annotations only: importing it costs 7 ms at start-up

from dlock.backends.base import Backend, Options, ProgressCallback
from dlock.durations import check_timeout, check_ttl, format_duration
from dlock.errors import CorruptLock, LockBusy, NotOwner, Refused, Remedy, UsageError
from dlock.lease import CHECK_INTERVAL, Lease
from dlock.fleet import DEFAULT_DEPTH, removable
from dlock.model import CleanReport, FleetLock, FleetReport, LockInfo, LockStatus, State
from dlock.targets import open_backend

DEFAULT_TTL = 300.0
FIRST_DELAY, MAX_DELAY, BACKOFF = 0.05, 1.0, 1.5

# on_wait(busy, waited_seconds): called before each pause while waiting (a spinner);
# busy.holder is the LockInfo or LockStatus that was found held.
WaitCallback = Callable[[LockBusy, float], None]


class TargetOptions(TypedDict, total=False):
    """Keywords every call accepts, as the CLI's options do.

    storage_options: passed to the fsspec filesystem (`-o KEY=VALUE`), e.g. endpoint_url;
        for a rediss:// target its TLS settings: ssl_ca_certs, ssl_certfile, ssl_keyfile,
        ssl_cert_reqs, ssl_check_hostname (redis-py's names).
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


# A target: a path or URL string, or any os.PathLike (pathlib.Path) for a local dataset.
Target = Union[str, "os.PathLike[str]"]


def options(**given: Unpack[TargetOptions]) -> Options:
    """The backend Options for these keywords (see TargetOptions); TypeError for any other."""
    unknown = sorted(set(given) - set(TargetOptions.__annotations__))
    if unknown:
        raise TypeError(f"unexpected keyword argument{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}")
    storage = given.get("storage_options") or {}
    if not isinstance(storage, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in storage.items()):
        raise TypeError("storage_options must map option names to text values, as -o KEY=VALUE does")
    for name in ("branch", "commit", "zk_auth"):
        if given.get(name) is not None and not isinstance(given.get(name), str):
            raise TypeError(f"{name} must be a string, not {type(given.get(name)).__name__}")
    validity = given.get("validity")
    if validity is not None:
        validity = check_ttl(validity, what="validity")
    zk_timeout = given.get("zk_timeout", 10.0)
    if isinstance(zk_timeout, bool) or not isinstance(zk_timeout, (int, float)) or not (0 < zk_timeout <= 3600 and math.isfinite(zk_timeout)):
        raise UsageError(f"zk_timeout {zk_timeout!r} must be more than 0 and at most an hour.")
    return Options(dict(storage), given.get("branch", "main"), given.get("commit"), validity, float(zk_timeout), given.get("zk_auth"))


def target_text(target: Target) -> str:
    """A target as text: str as given, os.PathLike (pathlib.Path) through os.fspath."""
    if isinstance(target, str):
        return target
    if isinstance(target, os.PathLike):
        path = os.fspath(target)
        if isinstance(path, str):
            return path
    raise TypeError(f"a target is a path or URL string or an os.PathLike, not {type(target).__name__}")


def status(target: Target, **target_options: Unpack[TargetOptions]) -> LockStatus:
    """Every lock of `target` (a dataset path/URL or zk://...), judged now."""
    with open_backend(target_text(target), options(**target_options)) as backend:
        return backend.status()


def acquire(
    target: Target,
    *,
    timeout: float | None = 0,
    ttl: float = DEFAULT_TTL,
    note: str = "",
    shared: bool = False,
    on_wait: WaitCallback | None = None,
    **target_options: Unpack[TargetOptions],
) -> Lease:
    """Take the lock of `target` and return its Lease.

    `timeout` 0 tries once, a positive value waits that many seconds, -1 or None waits
    forever; raises LockBusy when the lock stays held. `ttl` is 1 s to 30 d. The lease is
    not refreshed unless you call `lease.keep_alive()` (or use `dlock.lock`).
    """
    target = target_text(target)
    wait_seconds = check_timeout(timeout)
    ttl = check_ttl(ttl)
    if not isinstance(note, str):
        raise TypeError(f"note must be a string, not {type(note).__name__}")
    backend = open_backend(target, options(**target_options))
    try:
        handle = _retry_while_busy(
            backend, lambda: backend.try_acquire(ttl=ttl, note=note, shared=shared), wait_seconds, on_wait
        )
    except BaseException:
        backend.close()
        raise
    return Lease(backend, handle)


def refresh(target: Target, token: str, *, ttl: float = DEFAULT_TTL, **target_options: Unpack[TargetOptions]) -> Lease:
    """Extend a lock held under `token` (perhaps by another process); raises NotOwner if not ours."""
    ttl = check_ttl(ttl)
    backend = open_backend(target_text(target), options(**target_options))
    lease = Lease(backend, backend.adopt(token, ttl=ttl))
    lease.refresh()
    return lease


def check(target: Target, token: str, *, fence: int | None = None, **target_options: Unpack[TargetOptions]) -> LockInfo:
    """The lock, if `token` holds it now (and its fence is `fence`, when given): the last
    question a job asks before it commits. Raises NotOwner otherwise: released, taken over,
    forced away, expired, or holding under another fence."""
    if not isinstance(token, str) or not token:
        raise UsageError("check needs the owner token that acquire printed.")
    if fence is not None and (not isinstance(fence, int) or isinstance(fence, bool) or fence < 1):
        raise UsageError(f"a fence is a positive whole number, not {fence!r}.")
    with open_backend(target_text(target), options(**target_options)) as backend:
        info = backend.owned_by(token)
    if fence is not None and info.fence != fence:
        held = "no fence" if info.fence is None else f"fence {info.fence}"
        raise NotOwner(f"{info.path}: the token holds the lock under {held}, not fence {fence}.")
    return info


def release(
    target: Target,
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
    target = target_text(target)
    check_release_choice(token, force, if_stale)
    with open_backend(target, options(**target_options)) as backend:
        if token:
            handle = backend.adopt(token, ttl=DEFAULT_TTL)
            info = backend.status().primary
            handle.release()
            return [info] if info else []
        return backend.remove(force=force, if_stale=if_stale, seen=seen, include_waiters=include_waiters)


def check_release_choice(token: str | None, force: bool, if_stale: bool) -> None:
    """A release is by token, by force, or of a stale lock: exactly one."""
    if sum((token is not None, bool(force), bool(if_stale))) != 1:
        raise UsageError("a release is by token, by force or only if stale: exactly one of them.",
                         remedy=Remedy.RELEASE_CHOICE)


def wait(target: Target, timeout: float | None = None, *, on_wait: WaitCallback | None = None, **target_options: Unpack[TargetOptions]) -> bool:
    """Block until `target` is free (absent or stale); False when `timeout` seconds pass first.
    A corrupt lock is not free: CorruptLock."""
    target = target_text(target)
    limit = check_timeout(timeout)
    with open_backend(target, options(**target_options)) as backend:

        def check() -> LockStatus:
            current = backend.status()
            if current.state is State.CORRUPT:
                bad = next(lock for lock in current.locks if lock.state is State.CORRUPT)
                raise CorruptLock(f"{bad.path} is corrupt ({bad.reason}), so {target} is not free. Inspect it.",
                                  remedy=Remedy.FORCE_RELEASE)
            if current.state is State.HELD:
                raise LockBusy(f"{target} is locked.", holder=current)
            return current

        try:
            _retry_while_busy(backend, check, limit, on_wait)
        except LockBusy:
            return False
        return True


@contextlib.contextmanager
def lock(
    target: Target,
    *,
    timeout: float | None = -1,
    ttl: float = DEFAULT_TTL,
    note: str = "",
    shared: bool = False,
    check_interval: float = CHECK_INTERVAL,
    **target_options: Unpack[TargetOptions],
) -> Iterator[Lease]:
    """Hold the lock of `target` for a `with` block: acquire, refresh in the background, release.

    `timeout` -1 (default) or None waits forever. While the block runs, the lock is
    confirmed every `check_interval` seconds; once it is lost (forced away, taken over)
    `lease.lost` is True, and leaving the block raises LockLost unless the block itself
    raised. Check `lease.lost` in long loops: once it is True another writer may hold it.
    """
    if isinstance(check_interval, bool) or not isinstance(check_interval, (int, float)) or not check_interval > 0:
        raise UsageError(f"check_interval {check_interval!r} must be more than zero seconds.")
    lease = acquire(target, timeout=timeout, ttl=ttl, note=note, shared=shared, **target_options)
    try:
        lease.keep_alive(check_interval=check_interval)
        try:
            yield lease
        except BaseException:
            with contextlib.suppress(Exception):
                lease.release()
            raise
        lease.release()  # LockLost if the lock was lost during the block
    finally:
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
    root: Target, *, depth: int = DEFAULT_DEPTH, on_progress: ProgressCallback | None = None,
    **target_options: Unpack[TargetOptions],
) -> FleetReport:
    """Every lock under `root` (a directory tree, a bucket prefix, a ZooKeeper subtree), judged now."""
    with open_backend(target_text(root), options(**target_options)) as backend:
        return backend.scan(depth=_depth(depth), on_progress=on_progress)


def clean(
    root: Target,
    *,
    older_than: float | None = None,
    dry_run: bool = False,
    confirm: Callable[[list[FleetLock]], bool] | None = None,
    depth: int = DEFAULT_DEPTH,
    on_progress: ProgressCallback | None = None,
    **target_options: Unpack[TargetOptions],
) -> CleanReport:
    """Remove the stale and corrupt locks under `root` (and with `older_than` seconds, held
    locks not written for that long), each only if it is still the object judged. `confirm`
    is shown the chosen locks first and may refuse (Refused)."""
    root = target_text(root)
    with open_backend(root, options(**target_options)) as backend:
        report = backend.scan(depth=_depth(depth), on_progress=on_progress)
        chosen = removable(report, older_than=older_than)
        if chosen and not dry_run and confirm is not None and not confirm(chosen):
            raise Refused(f"{root}: nothing removed.")
        removals = backend.remove_found(chosen, dry_run=dry_run) if chosen else []
    return CleanReport(report, chosen, removals)


def force_preview(target: Target, *, include_waiters: bool = False, **target_options: Unpack[TargetOptions]) -> list[LockInfo]:
    """What `release(force=True)` would remove now: the lock acquire takes (lock files), or
    the holders' nodes, with `include_waiters` every contender's (ZooKeeper)."""
    with open_backend(target_text(target), options(**target_options)) as backend:
        return backend.force_preview(include_waiters)


def _depth(depth: int) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 64:
        raise UsageError(f"depth {depth!r} must be a whole number from 0 to 64.")
    return depth
