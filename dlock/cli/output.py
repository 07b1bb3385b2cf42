"""All rendering: rich tables on a terminal, plain aligned text when piped, JSON on request.

Commands never print directly. rich is imported only when a terminal will show it,
so piped and --json output start fast. Every string printed here (tables and
sentences alike) passes through `printable`: a lock's note, host or path is written
by whoever took the lock, and must not drive the reader's terminal.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Sequence, TextIO

from dlock.cli.escape import printable
from dlock.durations import format_duration
from dlock.model import FleetReport, Holder, LockInfo, LockStatus, State, to_jsonable

STATE_STYLE = {State.HELD: "bold red", State.STALE: "yellow", State.ABSENT: "green", State.CORRUPT: "bold magenta"}
STATE_LABEL = {State.HELD: "held", State.STALE: "stale", State.ABSENT: "free", State.CORRUPT: "corrupt"}

def _line(text: str, stream: TextIO | None = None) -> None:
    print(printable(text), file=stream or sys.stdout)


def fancy(stream: TextIO) -> bool:
    """Rich output only on a terminal; NO_COLOR keeps the layout but drops colour (rich honours it)."""
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def _console(stream: TextIO):  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=False)


# -- sentences ------------------------------------------------------------------------


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    """"1 lock", "2 locks", "1 directory", "3 directories"."""
    return f"{count} {word if count == 1 else (plural_form or word + 's')}"


def say(message: str) -> None:
    _line(message, sys.stderr)


def warn(message: str) -> None:
    _line(f"dlock: warning: {message}", sys.stderr)


def error(message: str) -> None:
    _line(f"dlock: {message}", sys.stderr)


def emit(text: str) -> None:
    """A value scripts capture (a token): stdout, alone on its line."""
    _line(text)


def emit_document(text: str) -> None:
    """A document in another program's format (Prometheus metrics): exact when piped, where a
    program reads it; each line escaped on a terminal, where a person does."""
    if sys.stdout.isatty():
        for line in text.splitlines():
            _line(line)
    else:
        sys.stdout.write(text)


def emit_json(document: Any) -> None:
    import json  # only for --json: off the start-up path of plain output

    print(json.dumps(to_jsonable(document), indent=2))


def emit_json_line(document: Any) -> None:
    import json

    print(json.dumps(to_jsonable(document), separators=(",", ":")), flush=True)


# -- relative times -------------------------------------------------------------------


def relative(when: float | None, now: float | None = None) -> str:
    if when is None:
        return ""
    delta = when - (time.time() if now is None else now)
    return f"in {format_duration(delta)}" if delta >= 0 else f"{format_duration(delta)} ago"


def expiry_text(lock: LockInfo) -> str:
    if lock.state is State.HELD and lock.expires_at is not None:
        return f"expires {relative(lock.expires_at)}"
    if lock.state is State.STALE and lock.expires_at is not None:
        return f"expired {relative(lock.expires_at)}"
    if lock.waiting:
        return "waiting"
    return ""


def holder_text(holder: Holder | None) -> str:
    if holder is None:
        return ""
    parts = []
    if holder.mode:
        parts.append(holder.mode)
    who = (holder.user + "@") if holder.user else ""
    if holder.host:
        parts.append(who + holder.host)
    elif holder.node_id:
        parts.append(holder.node_id)
    if holder.pid is not None:
        alive = "" if holder.pid_alive is None else (" alive" if holder.pid_alive else " dead")
        parts.append(f"pid {holder.pid}{alive}")
    if holder.this_machine and not holder.host:
        parts.append("(this machine)")
    if holder.tool and holder.tool != "dlock" and not holder.tool.startswith("dlock/"):
        parts.append(f"[{holder.tool}]")
    if holder.identifier:
        parts.append(repr(holder.identifier) if len(holder.identifier) < 40 else repr(holder.identifier[:37] + "..."))
    if holder.note:
        parts.append(f'"{holder.note}"')
    return " ".join(parts)


# -- status ----------------------------------------------------------------------------

COLUMNS = ("LOCK", "BRANCH", "STATE", "HOLDER", "EXPIRY", "AGE", "SKEW")


def _short(status: LockStatus, lock: LockInfo) -> str:
    if status.kind.session_bound:  # contenders: the node's name says who
        return lock.path.rsplit("/", 1)[-1] if lock.holder else lock.path
    base = status.target.rstrip("/")
    path = lock.path
    for prefix in (base + "/", base.split("://", 1)[-1].lstrip("/") + "/"):
        index = path.find(prefix)
        if index >= 0:
            path = path[index + len(prefix) :]
            break
    if lock.version and len(lock.version) > 12:
        path = path.replace(lock.version, lock.version[:8] + "…")
    return path


def _row(status: LockStatus, lock: LockInfo) -> tuple[str, ...]:
    skew = _skew_text(lock.clock_skew)
    return (
        _short(status, lock),
        lock.branch or "",
        STATE_LABEL[lock.state] + (" (waiting)" if lock.waiting else ""),
        _holder_cell(lock),
        expiry_text(lock),
        format_duration(lock.age) if lock.age is not None and lock.state is not State.ABSENT else "",
        skew,
    )


def _holder_cell(lock: LockInfo) -> str:
    text = holder_text(lock.holder) or (lock.reason or "")
    return f"{text} fence {lock.fence}".lstrip() if lock.fence is not None else text


def _skew_text(skew: float | None) -> str:
    """Writer's clock minus the store's: tenths of a second matter, hours mean a copied file."""
    if skew is None or abs(skew) < 0.05:
        return ""
    sign = "+" if skew > 0 else "-"
    return f"{skew:+.1f}s" if abs(skew) < 60 else sign + format_duration(skew)


def _headline(status: LockStatus) -> str:
    text = f"{status.target}: {STATE_LABEL[status.state]} ({status.kind.label})"
    if not status.atomic:
        text += " [store without conditional writes: locking is not atomic]"
    return text


def render_status(statuses: Sequence[LockStatus], stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    if fancy(stream):
        _render_status_rich(statuses, stream)
    else:
        _render_status_plain(statuses, stream)


def _render_status_plain(statuses: Sequence[LockStatus], stream: TextIO) -> None:
    for index, status in enumerate(statuses):
        if index:
            _line("", stream)
        _line(_headline(status), stream)
        rows = [COLUMNS] + [_printable_row(_row(status, lock)) for lock in status.locks]
        used = [i for i in range(len(COLUMNS)) if any(row[i] for row in rows[1:])]
        widths = {i: max(len(row[i]) for row in rows) for i in used}
        for row in rows:
            _line("  " + "  ".join(row[i].ljust(widths[i]) for i in used).rstrip(), stream)
        _render_warnings(status, lambda text: _line(f"  ! {text}", stream))


def _render_status_rich(statuses: Sequence[LockStatus], stream: TextIO) -> None:
    from rich.padding import Padding
    from rich.text import Text

    console = _console(stream)
    for status in statuses:
        style = STATE_STYLE[status.state]
        console.print(Text.assemble((printable(status.target), "bold"), ": ", (STATE_LABEL[status.state], style), overflow="fold"))
        _print_locks(console, COLUMNS, [_row(status, lock) for lock in status.locks], [lock.state for lock in status.locks])
        if not status.atomic:
            console.print("  [yellow]store without conditional writes: locking is not atomic[/]")
        _render_warnings(status, lambda text: console.print(Padding(Text("! " + printable(text), style="yellow"), (0, 0, 0, 2))))
        console.print()


# A holder wraps well in a table down to this width; narrower, it reads better as a block.
HOLDER_MIN_WIDTH = 24


def _print_locks(console: Any, headers: Sequence[str], rows: Sequence[tuple[str, ...]], states: Sequence[State]) -> None:
    """A table when it fits the terminal, else one block per lock: to fit, rich would cut
    the state, drop the holder column, and cut similar paths to the same prefix."""
    used = [i for i in range(len(headers)) if any(row[i] for row in rows)]
    headers = [headers[i] for i in used]
    cells = [[printable(row[i]) for i in used] for row in rows]
    if _table_width(headers, cells) <= console.width:
        console.print(_table(headers, cells, states))
    else:
        _print_blocks(console, headers, cells, states)


def _table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Every column at full width but the holder's, which may wrap down to HOLDER_MIN_WIDTH
    or its longest word (user@host), whichever is wider: rich would cut a longer word."""
    from rich.cells import cell_len

    columns = list(zip(headers, *rows))
    widths = [max(cell_len(text) for text in column) for column in columns]
    if "HOLDER" in headers:
        holder = headers.index("HOLDER")
        longest_word = max(cell_len(word) for text in columns[holder] for word in text.split())
        widths[holder] = min(widths[holder], max(HOLDER_MIN_WIDTH, longest_word))
    return sum(widths) + 2 * (len(widths) - 1)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], states: Sequence[State]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold dim", pad_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=header != "HOLDER")
    for row, state in zip(rows, states):
        table.add_row(*[Text(cell, style=STATE_STYLE[state] if header == "STATE" else "") for header, cell in zip(headers, row)])
    return table


def _print_blocks(console: Any, headers: Sequence[str], rows: Sequence[Sequence[str]], states: Sequence[State]) -> None:
    """`LOCK path`, then one indented `label: value` line per column; long values wrap, never cut."""
    from rich.padding import Padding
    from rich.text import Text

    for row, state in zip(rows, states):
        console.print(_grid([(Text(headers[0], style="bold dim"), Text(row[0], style="bold"))]))
        details = [(Text(header.lower() + ":", style="dim"), Text(cell, style=STATE_STYLE[state] if header == "STATE" else ""))
                   for header, cell in zip(headers[1:], row[1:]) if cell]
        console.print(Padding(_grid(details), (0, 0, 0, 2), expand=False))


def _grid(rows: Sequence[tuple[Any, Any]]) -> Any:
    """Labels on the left; a value too long for the line wraps under itself (a path folds)."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def _printable_row(row: tuple[str, ...]) -> tuple[str, ...]:
    """Escaped before aligning, so the columns line up with what is shown."""
    return tuple(printable(cell) for cell in row)


def _render_warnings(status: LockStatus, write: Any) -> None:
    for lock in status.locks:
        if lock.warning:
            write(f"{_short(status, lock)}: {lock.warning}")


def render_locks_for_confirmation(locks: Iterable[LockInfo]) -> None:
    for lock in locks:
        say(f"  {lock.path}: {STATE_LABEL[lock.state]}, {holder_text(lock.holder) or lock.reason or 'unknown holder'}"
            + (f", {expiry_text(lock)}" if expiry_text(lock) else ""))


# -- waiting -----------------------------------------------------------------------------


class _LiveLine:
    """One spinner line on stderr, on a terminal only; gone when the block ends."""

    def __init__(self) -> None:
        self._status: Any = None
        self._enabled = fancy(sys.stderr)

    def show(self, text: str) -> None:
        from rich.text import Text

        line = Text(printable(text))  # a Text, not a str: rich would read "[...]" in a path as markup
        if self._status is None:
            self._status = _console(sys.stderr).status(line)
            self._status.start()
        else:
            self._status.update(line)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Take the line off the terminal (before a question, say); the next update shows it again."""
        if self._status is not None:
            self._status.stop()
            self._status = None


class WaitDisplay(_LiveLine):
    """A spinner with the holder and the time waited."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def __call__(self, busy: Exception, waited: float) -> None:
        if not self._enabled:
            return
        holder = getattr(busy, "holder", None)
        if isinstance(holder, LockStatus):
            holder = holder.primary or next((lock for lock in holder.locks if lock.state is State.HELD), None)
        who = holder_text(holder.holder) if isinstance(holder, LockInfo) else ""
        self.show(f"waiting for {self.target}" + (f", held by {who}" if who else "") + f" ({format_duration(waited)})")


class GuardDisplay(_LiveLine):
    """`guard`: a line per event (JSON with `json_lines`); on a terminal, refreshes only
    update a spinner line and the other events print above it."""

    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines
        self.guarded: dict[str, Any] = {}  # lock path -> its latest event

    def __call__(self, event: Any) -> None:
        if self.json_lines:
            emit_json_line(event)
            return
        if event.ended:
            self.guarded.pop(event.path, None)
        else:
            self.guarded[event.path] = event
        if not (self._enabled and event.event == "refreshed"):
            self._print(f"{event.path}: {event.detail}")
        if self._enabled:
            self._spin()

    def _print(self, text: str) -> None:
        if self._status is None:
            say(text)
        else:
            from rich.text import Text

            self._status.console.print(Text(printable(text)))

    def _spin(self) -> None:
        if not self.guarded:
            if self._status is not None:
                self._status.stop()
                self._status = None
            return
        latest = max(self.guarded.values(), key=lambda event: event.time)
        expiry = time.strftime("%H:%M:%S", time.localtime(latest.expires_at)) if latest.expires_at else "?"
        pids = ", ".join(str(event.pid) for event in self.guarded.values())
        rewrites = sum(event.refreshes for event in self.guarded.values())
        self.show(f"guarding Deep Lake pid {pids}: {plural(rewrites, 'rewrite')}, valid until {expiry}")


# -- fleet (list / clean) -------------------------------------------------------------------

FLEET_COLUMNS = ("DATASET", "LOCK", "STATE", "HOLDER", "EXPIRY", "AGE")


def jsonable(value: Any) -> Any:
    return to_jsonable(value)


def _fleet_row(entry: Any) -> tuple[str, ...]:
    lock: LockInfo = entry.lock
    relative_path = lock.path[len(entry.dataset) :].lstrip("/") if lock.path.startswith(entry.dataset) else lock.path
    if lock.version and len(lock.version) > 12:
        relative_path = relative_path.replace(lock.version, lock.version[:8] + "…")
    return (
        entry.dataset,
        relative_path,
        STATE_LABEL[lock.state],
        holder_text(lock.holder) or (lock.reason or ""),
        expiry_text(lock),
        format_duration(lock.age) if lock.age is not None else "",
    )


def render_fleet(entries: Sequence[Any], stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    rows = [_fleet_row(entry) for entry in entries]
    if not rows:
        return
    if fancy(stream):
        _print_locks(_console(stream), FLEET_COLUMNS, rows, [entry.lock.state for entry in entries])
        return
    rows = [_printable_row(row) for row in rows]
    widths = [max(len(row[i]) for row in [FLEET_COLUMNS, *rows]) for i in range(len(FLEET_COLUMNS))]
    for row in [FLEET_COLUMNS, *rows]:
        _line("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), stream)


def fleet_summary(report: FleetReport) -> str:
    """The line under `list` and `clean`, such as "1 dataset, 2 locks: 1 held, 1 stale, 0 corrupt"."""
    if not report.datasets:
        return f"{report.root}: no datasets found (nothing to list)."
    counts = ", ".join(f"{report.count(state)} {STATE_LABEL[state]}" for state in (State.HELD, State.STALE, State.CORRUPT))
    return f"{plural(report.datasets, 'dataset')}, {plural(len(report.locks), 'lock')}: {counts}."


def render_removal(result: Any) -> None:
    label = {"removed": "removed", "would-remove": "would remove", "kept": "kept", "failed": "FAILED"}[result.outcome]
    state = STATE_LABEL[result.lock.state]
    detail = f": {result.detail}" if result.detail else ""
    _line(f"{label} {result.lock.path} ({state}){detail}")


class Progress(_LiveLine):
    """A scan on a terminal: a live count while its size is unknown, a bar once the scan
    reports a total (the folders under the root, then the lock files to read). Nothing when
    stderr is not a terminal."""

    def __init__(self, description: str) -> None:
        super().__init__()
        self.description = description
        self._last = 0.0
        self._unit = ""
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, done: int, found: int, total: int | None = None, unit: str = "directories") -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and unit == self._unit and done != total:
            return
        self._last, self._unit = now, unit
        if total is None:
            self.show(f"{self.description}: {plural(done, 'directory', 'directories')}, {plural(found, 'lock file')}")
        else:
            counted = f"{done}/{total} {unit}" + (" read" if unit == "lock files" else f", {plural(found, 'lock file')}")
            self._show_bar(done, total, counted)

    def _show_bar(self, done: int, total: int, counted: str) -> None:
        if self._bar is None:
            super().stop()  # one live display at a time: the count gives way to the bar
            self._bar = _progress_bar(_console(sys.stderr))
            self._task = self._bar.add_task(printable(self.description), total=total, counted=counted)
            self._bar.start()
        self._bar.update(self._task, completed=done, total=total, counted=counted)

    def stop(self) -> None:
        super().stop()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _progress_bar(console: Any) -> Any:
    """`scanning ROOT ━━━━━━━━━━ 12/40 folders, 3 lock files` on one line that fits the
    terminal: a long root is cut with an ellipsis rather than wrapped. Gone when the scan ends."""
    from rich.progress import BarColumn, Progress as Bar, TextColumn
    from rich.table import Column

    return Bar(
        TextColumn("{task.description}", markup=False, table_column=Column(no_wrap=True, overflow="ellipsis", ratio=2)),
        BarColumn(bar_width=None, table_column=Column(ratio=1)),
        TextColumn("{task.fields[counted]}", markup=False, table_column=Column(no_wrap=True)),
        console=console,
        transient=True,
        expand=True,
    )
