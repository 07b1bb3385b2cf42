"""dlock's commands: read options, call the Python API, render, map errors to exit codes.

No lock logic lives here: the library does the work, the CLI is a thin skin over it.
"""

import functools
import inspect
import signal
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

import click
import typer

from dlock import api
from dlock._version import __version__
from dlock.cli import output
from dlock.cli.exitcodes import BACKEND, BUSY, CORRUPT, INTERNAL, OK, exit_code_for, message_for
from dlock.cli.runner import hold_until_signal, run_locked
from dlock.durations import check_ttl, parse_duration
from dlock.errors import DLockError, Interrupted, LockBusy, Refused, UsageError
from dlock.lease import Lease
from dlock.model import FleetLock, FleetReport, LockInfo, LockStatus, State
from dlock.targets import session_bound

class _UnescapedHelp:
    """Typer 0.20 escapes "[" in "[required]" and "[default: ...]" for rich markup whenever
    rich is installed, even with rich_markup_mode=None, where click's plain formatter
    prints the backslash."""

    def get_help(self, ctx: click.Context) -> str:
        return unescape_help(super().get_help(ctx))  # type: ignore[misc]


def unescape_help(text: str) -> str:
    return text.replace("\\[", "[")


class _Command(_UnescapedHelp, typer.core.TyperCommand):
    pass


class _Group(_UnescapedHelp, typer.core.TyperGroup):
    pass


app = typer.Typer(
    cls=_Group,
    name="dlock",
    help="Administer dataset write locks: Deep Lake 3 lock files (local, S3, GCS, fsspec), ZooKeeper lock nodes and Redis lock keys.",
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = False

# -- shared options --------------------------------------------------------------------

StorageOption = typer.Option(
    None, "--storage-option", "-o", metavar="KEY=VALUE", help="Passed to the fsspec filesystem (repeatable)."
)
Branch = typer.Option("main", "--branch", "-b", help="Deep Lake branch whose head is locked.")
Commit = typer.Option(None, "--commit", help="Lock this Deep Lake commit's version directly.")
ZkTimeout = typer.Option("10", "--zk-timeout", metavar="DURATION", help="ZooKeeper connect/operation timeout.")
ZkAuth = typer.Option(None, "--zk-auth", metavar="USER:PASSWORD", help="ZooKeeper digest auth.", envvar="DLOCK_ZK_AUTH", show_envvar=False)
Json = typer.Option(False, "--json", help="Print one JSON document (schema in the README).")
CheckInterval = typer.Option(
    "1", "--check-interval", metavar="DURATION",
    help="While holding: confirm the lock is still ours this often (one read; 0 only at refresh).",
)
Target = typer.Argument(..., metavar="TARGET", help="A dataset path or URL (s3://, gs://, az://, ...), a zk:// lock node or a redis:// lock key.")
Targets = typer.Argument(..., metavar="TARGET...", help="Dataset paths/URLs, zk:// lock nodes or redis:// lock keys.")


# Each verb that opens a target takes some of these; they are declared here once and reach
# the command as one `opts` dict of the API's keywords (see with_target_options).
TARGET_OPTIONS: Dict[str, Tuple[Any, Any]] = {
    "storage_option": (Optional[List[str]], StorageOption),
    "branch": (str, Branch),
    "commit": (Optional[str], Commit),
    "zk_timeout": (str, ZkTimeout),
    "zk_auth": (Optional[str], ZkAuth),
}
LOCK_FILE_OPTIONS = ("storage_option", "branch", "commit")
ZOOKEEPER_OPTIONS = ("zk_timeout", "zk_auth")
ALL_TARGET_OPTIONS = LOCK_FILE_OPTIONS + ZOOKEEPER_OPTIONS
ROOT_OPTIONS = ("storage_option",) + ZOOKEEPER_OPTIONS  # list/clean find every lock: no branch or commit


def with_target_options(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add the named shared options to a command's parameters and pass the command one
    `opts` dict (the API's target keywords) in their place."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command)
        own = [param for param in signature.parameters.values() if param.name != "opts"]
        shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=TARGET_OPTIONS[name][1],
                                    annotation=TARGET_OPTIONS[name][0]) for name in names]

        @functools.wraps(command)
        def with_opts(**given: Any) -> None:
            command(**{key: value for key, value in given.items() if key not in names},
                    opts=_target_options(**{name: given[name] for name in names}))

        with_opts.__signature__ = signature.replace(parameters=own + shared)  # type: ignore[attr-defined]
        return with_opts

    return decorate


def _target_options(
    storage_option: Optional[List[str]] = None,
    branch: str = "main",
    commit: Optional[str] = None,
    zk_timeout: str = "10",
    zk_auth: Optional[str] = None,
) -> Dict[str, Any]:
    storage = {}
    for item in storage_option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"storage option {item!r} is not KEY=VALUE.")
        storage[key.strip()] = value
    return {
        "storage_options": storage,
        "branch": branch,
        "commit": commit,
        "zk_timeout": parse_duration(zk_timeout, what="--zk-timeout"),
        "zk_auth": zk_auth,
    }


def _validity(ttl: Optional[str]) -> Dict[str, Any]:
    """`--ttl` of status/list/clean: the validity of a 14-byte (older Deep Lake) lock."""
    return {} if ttl is None else {"validity": check_ttl(parse_duration(ttl, what="--ttl"), what="--ttl")}


BACKEND_LIBRARIES = ("typer", "click", "rich", "fsspec", "s3fs", "gcsfs", "adlfs", "kazoo", "redis")


def _version_callback(value: bool) -> None:
    if value:
        from importlib import metadata

        def version_of(name: str) -> str:  # read from metadata: importing s3fs alone costs 0.4 s
            try:
                return f"{name} {metadata.version(name)}"
            except metadata.PackageNotFoundError:
                return f"{name} (not installed)"

        output.emit(f"dlock {__version__}")
        output.emit(", ".join(version_of(name) for name in BACKEND_LIBRARIES))
        raise typer.Exit()


def _debug_callback(value: bool) -> None:
    global _debug
    _debug = value


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", "-V", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", callback=_debug_callback, is_eager=True, help="Show tracebacks of errors."),
) -> None:
    """Exit codes: 0 ok/free, 1 busy or timed out, 2 usage, 3 lock lost, 4 storage error, 5 corrupt lock, 6 refused."""


# -- status ------------------------------------------------------------------------------


@app.command(cls=_Command)
@with_target_options(*ALL_TARGET_OPTIONS)
def status(
    targets: List[str] = Targets,
    json_output: bool = Json,
    ttl: Optional[str] = typer.Option(None, "--ttl", metavar="DURATION", help="Validity of a 14-byte (older Deep Lake) lock; default 300s."),
    *,
    opts: Dict[str, Any],
) -> None:
    """Show every lock of each TARGET. Exit 0 when all are free, 1 when one is held, 5 when one is corrupt."""
    opts = {**opts, **_validity(ttl)}
    failures: List[Tuple[str, DLockError]] = []
    if len(targets) == 1:  # one target: its error is the command's error
        statuses = [api.status(targets[0], **opts)]
    else:
        statuses, failures = _status_each(targets, opts)
    if json_output:
        overall = State.overall(s.state for s in statuses)
        errors = [{"target": target, "error": message_for(exc)} for target, exc in failures]
        output.emit_json({"state": overall.value, "targets": statuses, **({"errors": errors} if errors else {})})
    else:
        output.render_status(statuses)
    for _, exc in failures:
        output.error(message_for(exc))
    raise typer.Exit(max([exit_code_for(exc) for _, exc in failures], default=_status_code(statuses)))


def _status_each(targets: List[str], opts: Dict[str, Any]) -> Tuple[List[LockStatus], List[Tuple[str, DLockError]]]:
    """Several targets: one that fails (missing, unreachable) does not hide the others."""
    statuses: List[LockStatus] = []
    failures: List[Tuple[str, DLockError]] = []
    for target in targets:
        try:
            statuses.append(api.status(target, **opts))
        except DLockError as exc:
            failures.append((target, exc))
    return statuses, failures


def _status_code(statuses: List[LockStatus]) -> int:
    return {State.CORRUPT: CORRUPT, State.HELD: BUSY}.get(State.overall(s.state for s in statuses), OK)


# -- acquire / refresh / release ---------------------------------------------------------


@app.command(cls=_Command)
@with_target_options(*ALL_TARGET_OPTIONS)
def acquire(
    target: str = Target,
    timeout: str = typer.Option("0", "--timeout", "-t", metavar="DURATION", help="0 fails at once, -1 waits forever."),
    ttl: str = typer.Option("300", "--ttl", metavar="DURATION", help="Lock lifetime unless refreshed."),
    note: str = typer.Option("", "--note", "-n", help="Free text stored with the lock (why you hold it)."),
    hold: bool = typer.Option(False, "--hold", help="Keep holding and refreshing until SIGINT/SIGTERM, then release."),
    shared: bool = typer.Option(False, "--shared", help="Take a shared (read) lock (ZooKeeper only)."),
    check_interval: str = CheckInterval,
    json_output: bool = Json,
    *,
    opts: Dict[str, Any],
) -> None:
    """Take the lock and print its owner token (for `release --token` and `refresh`)."""
    wait_seconds = parse_duration(timeout, what="--timeout", allow_forever=True)
    ttl_seconds = _ttl(ttl)
    check = _check_interval(check_interval)
    if not hold and session_bound(target):
        raise UsageError(
            f"{target}: a ZooKeeper lock lives only as long as the process that holds it, so plain "
            "`acquire` would release it on exit. Use `dlock acquire --hold` or `dlock run`."
        )
    with _signals_interrupt(), output.WaitDisplay(target) as display:
        lease = api.acquire(target, timeout=wait_seconds, ttl=ttl_seconds, note=note, shared=shared, on_wait=display, **opts)
    document = {"target": target, "path": lease.path, "token": lease.token, "expires_at": lease.expires, "ttl": lease.ttl}
    try:
        if json_output:
            output.emit_json(document)
        else:
            output.emit(lease.token)
        sys.stdout.flush()
    except BaseException:  # the token never reached the caller: a lock nobody can release
        _give_back(lease)
        raise
    if not json_output:
        output.say(f"Locked {lease.path} (expires {output.relative(lease.expires)}).")
    if hold:
        sys.stdout.flush()
        raise typer.Exit(hold_until_signal(lease, check))


def _ttl(text: str) -> float:
    return check_ttl(parse_duration(text, what="--ttl"), what="--ttl")


def _check_interval(text: str) -> float:
    seconds = parse_duration(text, what="--check-interval")
    if seconds > 3600:
        raise UsageError("--check-interval is at most an hour; 0 confirms only at each refresh.")
    return seconds


@app.command(cls=_Command)
@with_target_options(*LOCK_FILE_OPTIONS)
def refresh(
    target: str = Target,
    token: str = typer.Option(..., "--token", help="The owner token `acquire` printed.", envvar="DLOCK_TOKEN", show_envvar=True),
    ttl: str = typer.Option("300", "--ttl", metavar="DURATION", help="New lifetime from now."),
    json_output: bool = Json,
    *,
    opts: Dict[str, Any],
) -> None:
    """Extend a lock you hold (exit 6 if the token does not own it)."""
    lease = api.refresh(target, token, ttl=_ttl(ttl), **opts)
    if json_output:
        output.emit_json({"target": target, "path": lease.path, "expires_at": lease.expires, "ttl": lease.ttl})
    else:
        output.say(f"Refreshed {lease.path} (expires {output.relative(lease.expires)}).")


@app.command(cls=_Command)
@with_target_options(*ALL_TARGET_OPTIONS)
def release(
    target: str = Target,
    token: Optional[str] = typer.Option(None, "--token", help="Release the lock this token owns."),
    force: bool = typer.Option(False, "--force", help="Remove the lock whoever holds it (asks first)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="With --force: do not ask (needed without a terminal)."),
    if_stale: bool = typer.Option(False, "--if-stale", help="Remove the lock only if it is stale."),
    all_contenders: bool = typer.Option(False, "--all", help="With --force on ZooKeeper: also remove waiters."),
    json_output: bool = Json,
    *,
    opts: Dict[str, Any],
) -> None:
    """Release a lock: your own (--token), a stale one (--if-stale), or anyone's (--force)."""
    api.check_release_choice(token, force, if_stale)
    if yes and not force:
        raise UsageError("--yes only applies to --force.")
    seen = None
    if force:
        proceed, seen = _confirm_force(target, yes, all_contenders, opts)
        if not proceed:
            if json_output:
                output.emit_json({"target": target, "removed": []})
            raise typer.Exit(OK)
    removed = api.release(target, token=token, force=force, if_stale=if_stale, seen=seen, include_waiters=all_contenders, **opts)
    if json_output:
        output.emit_json({"target": target, "removed": removed})
    elif removed:
        for lock in removed:
            output.say(f"Released {lock.path}.")
    else:
        output.say(f"{target}: there was no lock to release.")


def _confirm_force(target: str, yes: bool, include_waiters: bool, opts: Dict[str, Any]) -> Tuple[bool, Optional[LockInfo]]:
    shown = api.force_preview(target, include_waiters=include_waiters, **opts)
    if not shown:
        output.say(f"{target}: not locked; nothing to remove.")
        return False, None
    output.say(f"{target}: about to remove")
    output.render_locks_for_confirmation(shown)
    if not yes:
        if not sys.stdin.isatty():
            raise Refused(f"{target}: --force removes a lock someone may hold; without a terminal to ask, pass --yes as well.")
        if not click.confirm("Remove it?", default=False, err=True):
            raise Refused(f"{target}: nothing removed.")
    # What is removed is what was shown: a lock file is compared with its holder then;
    # ZooKeeper removes each node conditionally on the version it showed.
    return True, (shown[0] if len(shown) == 1 else None)


def _give_back(lease: Lease) -> None:
    try:
        lease.release()
    except DLockError as exc:
        output.warn(f"could not give back {lease.path}: {exc}")


# -- wait / run --------------------------------------------------------------------------


@app.command(cls=_Command)
@with_target_options(*ALL_TARGET_OPTIONS)
def wait(
    targets: List[str] = Targets,
    timeout: str = typer.Option("-1", "--timeout", "-t", metavar="DURATION", help="Give up after this long (exit 1); -1 waits forever."),
    json_output: bool = Json,
    *,
    opts: Dict[str, Any],
) -> None:
    """Wait until every TARGET is free (absent or stale). Exit 0 when free, 1 on timeout."""
    import time

    limit = parse_duration(timeout, what="--timeout", allow_forever=True)
    started = time.monotonic()
    free = True
    with _signals_interrupt():
        for target in targets:
            left = -1.0 if limit < 0 else max(0.0, limit - (time.monotonic() - started))
            with output.WaitDisplay(target) as display:
                if not api.wait(target, timeout=None if left < 0 else left, on_wait=display, **opts):
                    free = False
                    break
    waited = time.monotonic() - started
    if json_output:
        output.emit_json({"free": free, "waited": round(waited, 3), "targets": targets})
    elif not free:
        output.say(f"{target}: still locked after {timeout}.")
    raise typer.Exit(OK if free else BUSY)


@app.command(cls=_Command)
@with_target_options(*ALL_TARGET_OPTIONS)
def run(
    target: str = Target,
    command: List[str] = typer.Argument(..., metavar="-- COMMAND [ARG...]", help="The command to run while holding the lock."),
    timeout: str = typer.Option("0", "--timeout", "-t", metavar="DURATION", help="How long to wait for the lock; -1 forever."),
    ttl: str = typer.Option("300", "--ttl", metavar="DURATION", help="Lock lifetime; refreshed at 40% of it."),
    note: str = typer.Option("", "--note", "-n", help="Free text stored with the lock."),
    shared: bool = typer.Option(False, "--shared", help="Take a shared (read) lock (ZooKeeper only)."),
    conflict_exit_code: Optional[int] = typer.Option(None, "--conflict-exit-code", min=0, max=255, help="Exit with this code (0-255) instead of 1 when the lock stays busy."),
    grace: str = typer.Option("10", "--grace", metavar="DURATION", help="After losing the lock: time between SIGTERM and SIGKILL of COMMAND."),
    check_interval: str = CheckInterval,
    *,
    opts: Dict[str, Any],
) -> None:
    """Hold the lock while COMMAND runs; exit with its status (3 if the lock is lost)."""
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("run needs a command after --, as in: dlock run ./ds -- python ingest.py")
    wait_seconds = parse_duration(timeout, what="--timeout", allow_forever=True)
    ttl_seconds = _ttl(ttl)
    grace_seconds = parse_duration(grace, what="--grace")
    if grace_seconds > 3600:
        raise UsageError("--grace is at most an hour.")
    check = _check_interval(check_interval)
    try:
        with _signals_interrupt(), output.WaitDisplay(target) as display:
            lease = api.acquire(target, timeout=wait_seconds, ttl=ttl_seconds, note=note or " ".join(command)[:200], shared=shared, on_wait=display, **opts)
    except LockBusy as busy:
        if conflict_exit_code is None:
            raise
        output.error(str(busy))
        raise typer.Exit(conflict_exit_code)
    raise typer.Exit(run_locked(lease, command, grace_seconds, check))


# -- list / clean ---------------------------------------------------------------------------


Root = typer.Argument(..., metavar="ROOT", help="A directory tree, bucket prefix, ZooKeeper subtree or Redis key prefix.")
Depth = typer.Option(8, "--depth", min=0, max=64, help="How many directory levels below ROOT to look for datasets (0-64).")
LegacyTtl = typer.Option(None, "--ttl", metavar="DURATION", help="Validity of 14-byte (older Deep Lake) locks.")


def _scan_fleet(root: str, depth: int, opts: Dict[str, Any]) -> FleetReport:
    with output.Progress(f"scanning {root}") as progress:
        return api.scan_locks(root, depth=depth, on_progress=progress, **opts)


@app.command("list", cls=_Command)
@with_target_options(*ROOT_OPTIONS)
def list_(
    root: str = Root,
    stale: bool = typer.Option(False, "--stale", help="Only stale (and corrupt) locks."),
    held: bool = typer.Option(False, "--held", help="Only held locks."),
    depth: int = Depth,
    json_output: bool = typer.Option(False, "--json", help="One JSON object per lock (JSON lines)."),
    ttl: Optional[str] = LegacyTtl,
    *,
    opts: Dict[str, Any],
) -> None:
    """List every dataset lock under ROOT, with a summary (N held, M stale, K corrupt)."""
    report = _scan_fleet(root, depth, {**opts, **_validity(ttl)})
    entries = [e for e in report.locks if _wanted(e.lock.state, stale, held)]
    if json_output:
        for entry in entries:
            output.emit_json_line({"dataset": entry.dataset, **output.jsonable(entry.lock)})
        output.say(output.fleet_summary(report))
    else:
        output.render_fleet(entries)
        output.emit(output.fleet_summary(report))
    raise typer.Exit(_report_errors(report))


def _wanted(state: State, stale: bool, held: bool) -> bool:
    if not (stale or held):
        return True
    return (stale and state in (State.STALE, State.CORRUPT)) or (held and state is State.HELD)


def _report_errors(report: FleetReport) -> int:
    for problem in report.errors:
        output.error(problem)
    return BACKEND if report.errors else OK


@app.command(cls=_Command)
@with_target_options(*ROOT_OPTIONS)
def clean(
    root: str = Root,
    older_than: Optional[str] = typer.Option(None, "--older-than", metavar="DURATION", help="Also remove held locks not refreshed for this long."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be removed; remove nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (needed without a terminal)."),
    depth: int = Depth,
    json_output: bool = typer.Option(False, "--json", help="One JSON object per lock acted on (JSON lines)."),
    ttl: Optional[str] = LegacyTtl,
    *,
    opts: Dict[str, Any],
) -> None:
    """Remove stale and corrupt locks under ROOT (and with --older-than, abandoned ones); never a held lock otherwise."""
    if dry_run and yes:
        raise UsageError("--dry-run and --yes contradict each other; choose one.")
    age = parse_duration(older_than, what="--older-than") if older_than is not None else None
    if not (dry_run or yes or sys.stdin.isatty()):
        raise Refused(f"{root}: clean removes locks; without a terminal to ask, pass --yes (or --dry-run to look first).")

    def confirm(chosen: List[FleetLock]) -> bool:
        if yes:
            return True
        output.render_fleet(chosen, stream=sys.stderr)
        return click.confirm(f"Remove {output.plural(len(chosen), 'lock')}?", default=False, err=True)

    opts = {**opts, **_validity(ttl)}
    with output.Progress(f"scanning {root}") as progress:
        cleaned = api.clean(root, older_than=age, dry_run=dry_run, confirm=confirm, depth=depth, on_progress=progress, **opts)
    if not cleaned.chosen:
        output.say(f"{output.fleet_summary(cleaned.report)} Nothing to remove.")
        raise typer.Exit(_report_errors(cleaned.report))
    results = cleaned.removals
    for result in results:
        if json_output:
            output.emit_json_line({"action": result.outcome, "dataset": result.dataset, "detail": result.detail, **output.jsonable(result.lock)})
        else:
            output.render_removal(result)
    failed = [r for r in results if r.outcome == "failed"]
    done = sum(r.outcome in ("removed", "would-remove") for r in results)
    verb = "would remove" if dry_run else "removed"
    output.say(f"{root}: {verb} {done} of {output.plural(len(results), 'lock')}" + (f", {len(failed)} failed." if failed else "."))
    code = _report_errors(cleaned.report)
    raise typer.Exit(BACKEND if failed else code)


# -- entry point ---------------------------------------------------------------------------


class _signals_interrupt:
    """While waiting for a lock, SIGTERM stops dlock promptly (exit 143), like SIGINT (130)."""

    def __enter__(self) -> None:
        def interrupt(signum: int, frame: object) -> None:
            raise Interrupted(signum)

        self._previous = signal.signal(signal.SIGTERM, interrupt)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def _show_warning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    output.warn(str(message))


def entry() -> None:
    """The `dlock` command."""
    import warnings

    warnings.showwarning = _show_warning
    if "--debug" not in sys.argv[1:]:
        import logging

        # Libraries (gcsfs, botocore) log retries with tracebacks; dlock's error says it once.
        logging.getLogger().addHandler(logging.NullHandler())
    try:
        code = app(standalone_mode=False)
    except click.exceptions.Abort:
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except DLockError as exc:
        if _debug:
            import traceback

            traceback.print_exc()
        output.error(message_for(exc))
        code = exit_code_for(exc)
    except KeyboardInterrupt:
        output.error("interrupted.")
        code = 130
    except Exception as exc:  # a bug: say so in one sentence, the traceback with --debug
        if _debug:
            raise
        output.error(f"internal error: {type(exc).__name__}: {exc}. Run again with --debug for the traceback, and report it.")
        code = INTERNAL
    sys.stdout.flush()
    sys.exit(code if isinstance(code, int) else 0)


