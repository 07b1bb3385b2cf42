"""Walk a store for datasets and their lock files (`dlock list` / `clean` on lock files).

The walk is concurrent (a bounded pool; on object stores each call goes out on
fsspec's async loop, so many requests are in flight at once) and prunes at each
dataset: a dataset's tensors are never listed, only its lock files and versions/.
Each removal is conditional on the exact object that was judged, so a holder that
refreshes between the look and the delete keeps its lock.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import time
from typing import Generic, Iterable, TypeVar, cast

from dlock.backends.base import ProgressCallback
from dlock.backends.judge import judge_lock
from dlock.backends.layout import LOCK_NAME, SHORT_LOCKS, VERSION_INFO, LockFile, is_commit_id
from dlock.stores.base import Conflict, Store, Stored
from dlock.errors import BackendError, DLockError, NotFound, UsageError
from dlock.model import FleetLock, FleetReport, Kind, LockInfo, Removal, State

DATASET_MARKERS = frozenset({"dataset_meta.json", VERSION_INFO, LOCK_NAME})
ROOT_LOCKS = (LOCK_NAME, *SHORT_LOCKS)
CONCURRENCY = 32
FLAT_BUDGET = 1_000  # keys: one list page on S3 and GCS


def scan(
    store: Store,
    base: str,
    root: str,
    *,
    depth: int,
    validity: float | None,
    concurrency: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[FleetReport, dict[str, Stored]]:
    """Find and judge every dataset lock under `base`; also what each judged lock was, for
    removals conditional on exactly that object."""
    if depth < 0:
        raise UsageError(f"{root}: the depth must be zero or more.")
    if not store.is_dir(base):
        raise NotFound(f"{root}: no such directory or prefix. Check the path.")
    if concurrency is None:
        concurrency = CONCURRENCY if store.parallel_io else 1
    report = FleetReport(root, Kind.DIRECTORY, 0, [], [])
    seen: dict[str, Stored] = {}
    with futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="dlock-scan") as pool:
        try:
            walk = _Walk(store, depth, report, on_progress)
            walk.run(pool, base, concurrency)
            _judge_all(pool, store, walk.candidates, validity, report, seen, on_progress)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    report.locks.sort(key=lambda entry: (entry.dataset, entry.lock.path))
    return report, seen


def remove(
    store: Store, seen: dict[str, Stored], entries: Iterable[FleetLock], *, dry_run: bool = False,
    concurrency: int | None = None,
) -> list[Removal]:
    """Delete each lock only if it is still the object that was judged."""
    entries = list(entries)
    if dry_run:
        return [Removal(entry.dataset, entry.lock, "would-remove") for entry in entries]
    if concurrency is None:
        concurrency = CONCURRENCY if store.parallel_io else 1
    with futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="dlock-clean") as pool:
        try:
            jobs = [pool.submit(_remove_one, store, seen.get(entry.lock.path), entry) for entry in entries]
            return [job.result() for job in jobs]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


class _Walk:
    """Finds datasets and their lock files.

    Directory by directory ("dir": one delimiter listing each), except that below the
    root a store that can list a whole subtree in one request ("flat": list_tree, one
    page of keys) does so, and walks that directory ("walk") only when it holds more
    keys than FLAT_BUDGET. So a tree of small datasets costs a request per folder, and
    a big dataset at most one request more than the walk (its chunks are never paged).
    """

    def __init__(self, store: Store, depth: int, report: FleetReport, on_progress: ProgressCallback | None) -> None:
        self.store, self.depth, self.report, self.on_progress = store, depth, report, on_progress
        self.candidates: list[tuple[str, LockFile]] = []
        self.folders: _FolderSteps[tuple[str, int, str]] = _FolderSteps()

    def run(self, pool: futures.ThreadPoolExecutor, base: str, concurrency: int) -> None:
        # A queue feeds at most 2 x concurrency calls in flight: waiting on thousands of
        # futures at once costs time quadratic in their number.
        queue: collections.deque[tuple[tuple[str, int, str], int | None]] = collections.deque([((base, 0, "dir"), None)])
        pending: dict[futures.Future[object], tuple[tuple[str, int, str], int | None]] = {}
        while queue or pending:
            while queue and len(pending) < 2 * concurrency:
                item, folder = queue.popleft()
                call = _list_tree if item[2] == "flat" else _scan_dir
                pending[pool.submit(call, self.store, item[0])] = (item, folder)
            done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
            for future in done:
                item, folder = pending.pop(future)
                try:
                    children = self._visit(item, future.result())
                except DLockError as exc:
                    self.report.errors.append(str(exc))
                    children = []
                queue.extend(self.folders.follow(folder, children))
                if self.on_progress is not None:
                    self.on_progress(self.folders.done, len(self.candidates), total=self.folders.total, unit="folders")

    def _visit(self, item: tuple[str, int, str], result: object) -> list[tuple[str, int, str]]:
        path, level, kind = item
        if kind == "flat":
            if result is None:  # too many keys, or the store cannot: walk this subtree
                return [(path, level, "walk")]
            self._from_keys(path, level, cast("list[str]", result))
            return []
        dirs, files = cast("tuple[list[str], list[str]]", result)
        if kind == "versions":
            dataset = path.rstrip("/").rsplit("/", 1)[0]
            self.candidates += [(dataset, LockFile(self.store.join(path, c, LOCK_NAME), c)) for c in dirs if is_commit_id(c)]
            return []
        names = set(files) | set(dirs)  # a directory where a lock file should be is reported too
        if DATASET_MARKERS & names:
            self.report.datasets += 1
            self.candidates += [(path, LockFile(self.store.join(path, name))) for name in ROOT_LOCKS if name in names]
            return [(self.store.join(path, "versions"), level + 1, "versions")] if "versions" in dirs else []
        if level >= self.depth:
            return []
        child_kind = "flat" if self.store.lists_trees else "dir"
        return [(self.store.join(path, name), level + 1, child_kind) for name in dirs if not name.startswith(".")]

    def _from_keys(self, path: str, level: int, keys: list[str]) -> None:
        """Datasets and lock files from every key under `path` (relative, "/"-separated)."""
        split = [key.split("/") for key in keys]
        marked = {tuple(parts[:-1]) for parts in split if parts[-1] in DATASET_MARKERS and level + len(parts) - 1 <= self.depth}
        datasets = {d for d in marked if not any(d[:i] in marked for i in range(len(d)))}  # not inside another
        self.report.datasets += len(datasets)
        for parts in split:
            name = parts[-1]
            if name in ROOT_LOCKS and tuple(parts[:-1]) in datasets:
                self.candidates.append((self.store.join(path, *parts[:-1]), LockFile(self.store.join(path, *parts))))
            elif (name == LOCK_NAME and len(parts) >= 3 and parts[-3] == "versions" and is_commit_id(parts[-2])
                  and tuple(parts[:-3]) in datasets):
                dataset = self.store.join(path, *parts[:-3])
                self.candidates.append((dataset, LockFile(self.store.join(path, *parts), parts[-2])))


Step = TypeVar("Step")


class _FolderSteps(Generic[Step]):
    """The progress bar's steps: the folders directly under the root, known once the root is
    listed (the whole tree is not known until it has been walked). A folder is done when
    everything found below it has been listed."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0
        self._open: collections.Counter[int] = collections.Counter()

    def follow(self, folder: int | None, children: list[Step]) -> list[tuple[Step, int | None]]:
        """`children` found by listing an item of `folder` (None: the root), each tagged with its folder."""
        if folder is None:
            self.total = len(children)
            tagged: list[tuple[Step, int | None]] = [(child, index) for index, child in enumerate(children)]
        else:
            tagged = [(child, folder) for child in children]
        self._open.update(index for _, index in tagged if index is not None)
        if folder is not None:
            self._open[folder] -= 1
            if not self._open[folder]:
                self.done += 1
        return tagged


def _judge_all(
    pool: futures.ThreadPoolExecutor,
    store: Store,
    candidates: list[tuple[str, LockFile]],
    validity: float | None,
    report: FleetReport,
    seen: dict[str, Stored],
    on_progress: ProgressCallback | None,
) -> None:
    reads = {pool.submit(_read, store, lock.path): (dataset, lock) for dataset, lock in candidates}
    now = time.time()
    for done, future in enumerate(futures.as_completed(reads), 1):
        dataset, lock = reads[future]
        stored, problem = future.result()
        if problem is not None:
            info = LockInfo(path=lock.path, state=State.CORRUPT, version=lock.version, reason=problem)
            report.locks.append(FleetLock(dataset, info))
        elif stored is not None:
            seen[lock.path] = stored
            report.locks.append(FleetLock(dataset, judge_lock(lock, stored, validity, now)))
        if on_progress is not None:
            on_progress(done, len(candidates), total=len(candidates), unit="lock files")


def _remove_one(store: Store, stored: Stored | None, entry: FleetLock) -> Removal:
    if stored is None:
        return Removal(entry.dataset, entry.lock, "failed", "it could not be read, so it cannot be removed safely")
    try:
        store.delete(entry.lock.path, stored)
    except Conflict:
        return Removal(entry.dataset, entry.lock, "kept", "it changed since it was judged (its holder refreshed it)")
    except DLockError as exc:
        return Removal(entry.dataset, entry.lock, "failed", str(exc))
    return Removal(entry.dataset, entry.lock, "removed")


def _scan_dir(store: Store, path: str) -> tuple[list[str], list[str]]:
    try:
        return store.scan(path)
    except DLockError:
        raise
    except Exception as exc:  # a store's own error, named here with its directory
        raise BackendError(f"{path}: could not be listed ({type(exc).__name__}: {exc}).") from exc


def _list_tree(store: Store, path: str) -> list[str] | None:
    try:
        return store.list_tree(path, FLAT_BUDGET)
    except DLockError:
        raise
    except Exception as exc:
        raise BackendError(f"{path}: could not be listed ({type(exc).__name__}: {exc}).") from exc


def _read(store: Store, path: str) -> tuple[Stored | None, str | None]:
    try:
        return store.read(path), None
    except DLockError as exc:
        return None, f"unreadable: {exc}"
    except Exception as exc:
        return None, f"unreadable: {type(exc).__name__}: {exc}"


