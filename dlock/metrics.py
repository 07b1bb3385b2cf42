"""Lock metrics in the Prometheus text format, for node_exporter's textfile collector.

Built from what `list` found (a FleetReport) with prometheus_client's own gauges and
exposition code, so a dataset name with quotes, backslashes or newlines is escaped as
Prometheus expects. prometheus_client is imported here and only when metrics are asked
for: no other verb pays for it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from typing import TYPE_CHECKING, Callable

from dlock.errors import UsageError
from dlock.model import FleetLock, FleetReport, State

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Gauge

INSTALL = "pip install prometheus-client (or pip install 'dlock[metrics]')"
COUNTED = (State.HELD, State.STALE, State.CORRUPT)
LOCK_LABELS = ("root", "dataset", "version", "host", "lock")


def require() -> None:
    """Raise UsageError (with how to install it) when prometheus_client is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"Prometheus metrics need the prometheus_client library, which is not installed: {INSTALL}.") from exc


def registry_for(root: str, report: FleetReport | None, *, duration: float | None = None,
                 now: float | None = None) -> CollectorRegistry:
    """The metrics of one scan of `root`; `report` None when the scan failed as a whole
    (then only dlock_scan_success 0 and one error, so an alert fires instead of silence)."""
    require()
    from prometheus_client import CollectorRegistry, Gauge

    now = time.time() if now is None else now
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, labels: tuple[str, ...] = ("root",)) -> Gauge:
        return Gauge(name, documentation, labels, registry=registry)

    root_label = _label(root)
    gauge("dlock_scan_success", "1 if the scan of the root completed, 0 if it failed as a whole.").labels(root_label).set(report is not None)
    gauge("dlock_scan_errors", "Directories (or the root) that could not be listed in the last scan.").labels(root_label).set(
        1 if report is None else len(report.errors))
    gauge("dlock_scan_timestamp_seconds", "When the last scan ended, in Unix time.").labels(root_label).set(now)
    if duration is not None:
        gauge("dlock_scan_duration_seconds", "How long the last scan took.").labels(root_label).set(duration)
    if report is not None:
        _add_fleet(gauge, root_label, report, now)
    return registry


def _add_fleet(gauge: Callable[..., Gauge], root: str, report: FleetReport, now: float) -> None:
    gauge("dlock_datasets", "Datasets (or lock nodes, lock keys) found under the root.").labels(root).set(report.datasets)
    by_state = gauge("dlock_locks", "Locks found under the root, by state (held, stale, corrupt).", ("root", "state"))
    for state in COUNTED:
        by_state.labels(root, state.value).set(report.count(state))
    age = gauge("dlock_lock_age_seconds", "Per held lock: seconds since its holder last wrote it (a refresh resets it).", LOCK_LABELS)
    held = gauge("dlock_lock_held_seconds", "Per held lock: seconds since its holder took it "
                 "(dlock records that; for other writers, since the last write).", LOCK_LABELS)
    remaining = gauge("dlock_lock_ttl_remaining_seconds", "Per held lock: seconds until it expires unless refreshed.", LOCK_LABELS)
    for entry in report.locks:
        lock = entry.lock
        if lock.state is not State.HELD or lock.waiting:
            continue
        labels = _lock_labels(root, entry)
        since_taken = _since_taken(entry, now)
        if lock.age is not None:
            age.labels(*labels).set(lock.age)
        if since_taken is not None:
            held.labels(*labels).set(since_taken)
        if lock.expires_at is not None:
            remaining.labels(*labels).set(lock.expires_at - now)


def _lock_labels(root: str, entry: FleetLock) -> tuple[str, ...]:
    holder = entry.lock.holder
    host = (holder.host or holder.node_id or "") if holder is not None else ""
    return root, _label(entry.dataset), _label(entry.lock.version or ""), _label(host), _label(entry.lock.path)


def _since_taken(entry: FleetLock, now: float) -> float | None:
    created = entry.lock.holder.created if entry.lock.holder is not None else None
    if created is not None:
        return now - created
    return entry.lock.age


def _label(text: str) -> str:
    """A label value is UTF-8: a file name that is not (os.listdir's surrogates) keeps its bytes as \\udcXX."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def exposition(root: str, report: FleetReport | None, *, duration: float | None = None, now: float | None = None) -> bytes:
    """The Prometheus text format (what node_exporter's textfile collector reads)."""
    registry = registry_for(root, report, duration=duration, now=now)
    from prometheus_client import generate_latest

    return generate_latest(registry)


def check_output(path: str) -> None:
    """Fail before a long scan when the metrics could not be written where asked."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write the metrics to {path}: no such directory {directory}. Create it, or choose an existing one.")
    if os.path.isdir(path):
        raise UsageError(f"cannot write the metrics to {path}: it is a directory; give a file name such as {os.path.join(path, 'dlock.prom')}.")


def write_atomically(path: str, data: bytes) -> None:
    """Replace `path` with one rename, so node_exporter reads the old file or the new, never
    half of one. The temporary file sits in the same directory (a rename does not cross file
    systems) under a hidden name, which the textfile collector (it reads *.prom) skips."""
    directory, name = os.path.split(os.path.abspath(path))
    temp = os.path.join(directory, f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        # 0o666 less the umask, like any new file: node_exporter runs as another user and must read it.
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write the metrics to {path}: {exc.strerror or exc}. Check that its directory is writable.") from exc
        raise
