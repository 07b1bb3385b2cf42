"""dlock's commands: read options, call the Python API, render, map errors to exit codes.

No lock logic lives here: the library does the work, the CLI is a thin skin over it.
"""

import enum
import functools
import inspect
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import click
import typer

from dlock import api
from dlock.cli import output
from dlock.cli.exitcodes import BACKEND, BUSY, CORRUPT, INTERNAL, LOST, OK, exit_code_for, message_for
from dlock.durations import check_ttl, parse_duration
from dlock.errors import BackendError, DLockError, Interrupted, LockBusy, Refused, UsageError
from dlock.model import FleetLock, FleetReport, LockInfo, LockStatus, State
from dlock.targets import session_bound

if TYPE_CHECKING:
    from dlock.lease import Lease

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
    None, "--storage-option", "-o", metavar="KEY=VALUE", help="Passed to the fsspec filesystem; for rediss:// the TLS settings, e.g. ssl_ca_certs=PATH (repeatable)."
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


def _version_callback(value: bool) -> None:
    """`dlock --version` alone never gets here (dlock.cli.main answers it); with other options it does."""
    if value:
        from dlock.cli.version import version_lines

        for line in version_lines():
            output.emit(line)
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
    """Several targets, checked concurrently (see fanout), reported in the order given: one
    that fails (missing, unreachable) does not hide the others."""
    from dlock.cli.fanout import Fanout

    statuses: List[LockStatus] = []
    failures: List[Tuple[str, DLockError]] = []
    with Fanout(lambda target: api.status(target, **opts), targets) as fanout:
        for target, outcome in zip(targets, fanout.in_order()):
            try:
                statuses.append(outcome.result())
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
    try:
        fence = lease.fence
        document = {"target": target, "path": lease.path, "token": lease.token, "fence": fence,
                    "expires_at": lease.expires, "ttl": lease.ttl}
        if json_output:
            output.emit_json(document)
        else:
            output.emit(lease.token)
        sys.stdout.flush()
    except BaseException:  # the token never reached the caller: a lock nobody can release
        _give_back(lease)
        raise
    if not json_output:
        output.say(f"Locked {lease.path} (fence {fence}, expires {output.relative(lease.expires)}).")
    if hold:
        sys.stdout.flush()
        from dlock.cli.runner import hold_until_signal

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
def check(
    target: str = Target,
    token: str = typer.Option(..., "--token", help="The owner token `acquire` printed.", envvar="DLOCK_TOKEN", show_envvar=True),
    fence: Optional[int] = typer.Option(None, "--fence", min=1, help="Also require this fencing number.", envvar="DLOCK_FENCE", show_envvar=True),
    json_output: bool = Json,
    *,
    opts: Dict[str, Any],
) -> None:
    """Exit 0 if TOKEN still holds the lock (under FENCE, if given), else 6: the last call before a commit."""
    info = api.check(target, token, fence=fence, **opts)
    if json_output:
        output.emit_json({"target": target, "path": info.path, "owned": True, "fence": info.fence, "expires_at": info.expires_at})
    else:
        fenced = f"fence {info.fence}, " if info.fence is not None else ""
        output.say(f"The token holds {info.path} ({fenced}{output.expiry_text(info) or 'held'}).")


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


def _give_back(lease: "Lease") -> None:
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
    with _signals_interrupt(), output.WaitDisplay(targets[0]) as display:
        if len(targets) == 1:
            locked = None if api.wait(targets[0], timeout=None if limit < 0 else limit, on_wait=display, **opts) else targets[0]
        else:
            locked = _wait_each(targets, None if limit < 0 else started + limit, display, opts)
    waited = time.monotonic() - started
    if json_output:
        output.emit_json({"free": locked is None, "waited": round(waited, 3), "targets": targets})
    elif locked is not None:
        output.say(f"{locked}: still locked after {timeout}.")
    raise typer.Exit(OK if locked is None else BUSY)


class _Stopped(Exception):
    """Ends the wait for one target once the command has its answer."""


def _wait_each(targets: List[str], deadline: Optional[float], display: output.WaitDisplay, opts: Dict[str, Any]) -> Optional[str]:
    """Wait for several targets concurrently (see fanout); the first that stays locked past the
    deadline (None when all are free). The first error ends the wait, as the first timeout does."""
    import threading
    import time

    from dlock.cli.fanout import Fanout

    stopped, showing = threading.Event(), threading.Lock()

    def wait_one(target: str) -> bool:
        def on_wait(busy: LockBusy, waited: float) -> None:
            if stopped.is_set():
                raise _Stopped()
            with showing:  # one spinner line for all targets: the latest that was found held
                display.target = target
                display(busy, waited)

        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return api.wait(target, timeout=left, on_wait=on_wait, **opts)

    with Fanout(wait_one, targets, stopped=stopped) as fanout:
        for outcome in fanout.as_completed():
            if not outcome.result():
                return targets[outcome.index]
    return None


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
    from dlock.cli.runner import run_locked

    raise typer.Exit(run_locked(lease, command, grace_seconds, check))


# -- list / clean ---------------------------------------------------------------------------


Root = typer.Argument(..., metavar="ROOT", help="A directory tree, bucket prefix, ZooKeeper subtree or Redis key prefix.")
Depth = typer.Option(8, "--depth", min=0, max=64, help="How many directory levels below ROOT to look for datasets (0-64).")
LegacyTtl = typer.Option(None, "--ttl", metavar="DURATION", help="Validity of 14-byte (older Deep Lake) locks.")


def _scan_fleet(root: str, depth: int, opts: Dict[str, Any]) -> FleetReport:
    with output.Progress(f"scanning {root}") as progress:
        return api.scan_locks(root, depth=depth, on_progress=progress, **opts)


class ListFormat(str, enum.Enum):
    TABLE = "table"
    JSON = "json"
    PROMETHEUS = "prometheus"


@app.command("list", cls=_Command)
@with_target_options(*ROOT_OPTIONS)
def list_(
    root: str = Root,
    stale: bool = typer.Option(False, "--stale", help="Only stale (and corrupt) locks."),
    held: bool = typer.Option(False, "--held", help="Only held locks."),
    depth: int = Depth,
    json_output: bool = typer.Option(False, "--json", help="One JSON object per lock (JSON lines); short for --format json."),
    format_: Optional[ListFormat] = typer.Option(
        None, "--format", case_sensitive=False,
        help="table (the default), json (as --json) or prometheus: lock metrics in the Prometheus text format.",
    ),
    output_file: Optional[str] = typer.Option(
        None, "--output", metavar="FILE",
        help="With --format prometheus: replace FILE atomically instead of printing (node_exporter's textfile directory).",
    ),
    ttl: Optional[str] = LegacyTtl,
    *,
    opts: Dict[str, Any],
) -> None:
    """List every dataset lock under ROOT, with a summary (N held, M stale, K corrupt)."""
    chosen = _list_format(format_, json_output, output_file, stale or held)
    opts = {**opts, **_validity(ttl)}
    if chosen is ListFormat.PROMETHEUS:
        raise typer.Exit(_list_metrics(root, depth, opts, output_file))
    report = _scan_fleet(root, depth, opts)
    entries = [e for e in report.locks if _wanted(e.lock.state, stale, held)]
    if chosen is ListFormat.JSON:
        for entry in entries:
            output.emit_json_line({"dataset": entry.dataset, **output.jsonable(entry.lock)})
        output.say(output.fleet_summary(report))
    else:
        output.render_fleet(entries)
        output.emit(output.fleet_summary(report))
    raise typer.Exit(_report_errors(report))


def _list_format(format_: Optional[ListFormat], json_output: bool, output_file: Optional[str], filtered: bool) -> ListFormat:
    """--json is short for --format json; --output and the metrics take every lock."""
    if json_output and format_ not in (None, ListFormat.JSON):
        raise UsageError(f"--json and --format {format_.value} contradict each other; choose one.")
    chosen = ListFormat.JSON if json_output else (format_ or ListFormat.TABLE)
    if output_file is not None and chosen is not ListFormat.PROMETHEUS:
        raise UsageError("--output writes metrics: use it with --format prometheus.")
    if filtered and chosen is ListFormat.PROMETHEUS:
        raise UsageError("--format prometheus counts every lock; --stale and --held do not apply to it.")
    return chosen


def _list_metrics(root: str, depth: int, opts: Dict[str, Any], output_file: Optional[str]) -> int:
    """Scan, then print or write the metrics. A root that cannot be scanned at all still gets
    its metrics (dlock_scan_success 0), so an alert fires rather than the last figures staying."""
    import time

    from dlock import metrics

    metrics.require()
    if output_file is not None:
        metrics.check_output(output_file)
    started = time.monotonic()
    try:
        report = _scan_fleet(root, depth, opts)
    except BackendError:
        _put_metrics(metrics.exposition(root, None, duration=time.monotonic() - started), output_file)
        raise
    _put_metrics(metrics.exposition(root, report, duration=time.monotonic() - started), output_file)
    return _report_errors(report)


def _put_metrics(document: bytes, output_file: Optional[str]) -> None:
    from dlock import metrics

    if output_file is None:
        output.emit_document(document.decode("utf-8"))
    else:
        metrics.write_atomically(output_file, document)


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
        progress.stop()  # the question, not the finished bar, has the terminal
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


# -- guard -----------------------------------------------------------------------------------


@app.command(cls=_Command)
@with_target_options("storage_option")
def guard(
    target: str = typer.Argument(..., metavar="TARGET", help="A Deep Lake dataset path or URL; with --all, a ROOT tree or bucket prefix."),
    pid: Optional[int] = typer.Option(None, "--pid", min=1, help="Guard only the lock of this Deep Lake process."),
    all_writers: bool = typer.Option(False, "--all", help="Guard every live Deep Lake writer of this machine under ROOT, rescanning for new ones."),
    depth: int = Depth,
    rescan: str = typer.Option("60", "--rescan", metavar="DURATION", help="With --all: look for new writers this often."),
    until_idle: bool = typer.Option(False, "--until-idle", help="With --all: exit once no writer is left to guard (for cron)."),
    validity: str = typer.Option("300", "--validity", metavar="DURATION", help="Each rewrite's expiry from now (Deep Lake's own: 300s)."),
    interval: str = typer.Option("120", "--interval", metavar="DURATION", help="Rewrite the lock this often (Deep Lake's own: 120s)."),
    check_interval: str = typer.Option("1", "--check-interval", metavar="DURATION", help="Look at the process and its lock this often."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object per event (JSON lines)."),
    *,
    opts: Dict[str, Any],
) -> None:
    """Keep a running Deep Lake 3.9 writer's lock valid (Deep Lake never refreshes it). Exit 0 when the writer is done
    or on SIGINT/SIGTERM (the lock is left as it is), 1 when no live Deep Lake writer is found, 3 when another's lock replaces it."""
    from dlock.cli.runner import until_signal
    from dlock.guard import REPLACED, Schedule, guard_dataset, guard_tree

    schedule = Schedule(check_ttl(parse_duration(validity, what="--validity"), what="--validity"),
                        parse_duration(interval, what="--interval"), parse_duration(check_interval, what="--check-interval"))
    tree_only = [name for name in ("depth", "rescan", "until_idle") if _given(name)]
    if all_writers and pid is not None:
        raise UsageError("--pid picks one writer of one dataset; --all guards every writer under ROOT.")
    if tree_only and not all_writers:
        raise UsageError(f"--{tree_only[0].replace('_', '-')} goes with --all.")
    storage = opts["storage_options"]
    with output.GuardDisplay(json_output) as display:
        if all_writers:
            rescan_seconds = parse_duration(rescan, what="--rescan")
            endings = until_signal(lambda stop: guard_tree(target, depth=depth, rescan=rescan_seconds, until_idle=until_idle, schedule=schedule,
                                                            stop=stop, on_event=display, storage_options=storage))
        else:
            endings = until_signal(lambda stop: guard_dataset(target, pid=pid, schedule=schedule, stop=stop, on_event=display,
                                                              storage_options=storage))
    replaced = any(ending.event == REPLACED for ending in endings)
    raise typer.Exit(LOST if replaced and not all_writers else OK)  # --all reports it and guards on


def _given(name: str) -> bool:
    """Was this option typed on the command line (not its default)?"""
    source = click.get_current_context().get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


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


def _command(argv: List[str]) -> click.Command:
    """The click command for this run. When the verb comes first (after --debug), only that
    verb is built: Typer would build every verb's parameters, 2 ms of each start. Completion
    and everything else get the whole app."""
    leading = argv[1:] if argv[:1] == ["--debug"] else argv
    only = [info for info in app.registered_commands
            if leading and (info.name or typer.main.get_command_name(info.callback.__name__ if info.callback else "")) == leading[0]]
    if not only or "_DLOCK_COMPLETE" in os.environ:
        if {"--show-completion", "--install-completion"} & {arg.partition("=")[0] for arg in leading}:
            _static_completion_scripts()
        return typer.main.get_command(app)
    one = typer.Typer()
    one.__dict__.update(app.__dict__, registered_commands=only)
    return typer.main.get_command(one)


def _static_completion_scripts() -> None:
    """`--show-completion` and `--install-completion` give bash, zsh and fish the static
    scripts of dlock.cli.completion (no Python at each TAB) instead of Typer's, which start
    dlock at every TAB; other shells keep Typer's. (typer is pinned: this is its 0.20 API.)"""
    import typer._completion_shared as shared
    import typer.completion

    typers_script = shared.get_completion_script

    def get_completion_script(*, prog_name: str, complete_var: str, shell: str) -> str:
        if shell in ("bash", "zsh", "fish"):
            from dlock.cli.completion import script

            return script(shell, typer.main.get_command(app))
        return typers_script(prog_name=prog_name, complete_var=complete_var, shell=shell)

    shared.get_completion_script = get_completion_script
    setattr(typer.completion, "get_completion_script", get_completion_script)  # show_callback's own import of it


def entry() -> None:
    """The `dlock` command."""
    import warnings

    warnings.showwarning = _show_warning
    # Only a URL target loads a library that logs (a local path never does): importing logging costs 2 ms.
    if "--debug" not in sys.argv[1:] and any("://" in arg for arg in sys.argv[1:]):
        import logging

        # Libraries (gcsfs, botocore) log retries with tracebacks; dlock's error says it once.
        logging.getLogger().addHandler(logging.NullHandler())
    try:
        code = _command(sys.argv[1:])(standalone_mode=False)
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
    _exit(code if isinstance(code, int) else 0)


def _exit(code: int) -> None:
    """Exit as Python would, less the interpreter's teardown of every module and object
    (13 ms, a sixth of a `dlock status`): the exit handlers run (atexit, weakref.finalize),
    the streams are flushed, and then the process ends. While another thread that Python
    would wait for is alive, a normal exit."""
    import atexit
    import threading

    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a reader that went away
            pass
    os._exit(code)


