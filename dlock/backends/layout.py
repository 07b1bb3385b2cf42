"""Deep Lake 3's layout: which lock files a dataset has, and which one a writer of a branch takes.

Deep Lake locks the head commit it opens: `<dataset>/dataset_lock.lock` while the head is
the first commit, otherwise `<dataset>/versions/<head>/dataset_lock.lock`;
version_control_info.json names each branch's head. A lock at the root of a dataset with
commits does not stop Deep Lake. A directory without that file is locked at its root.
"""

from __future__ import annotations

import dataclasses
import re

from dlock.backends.base import Options
from dlock.stores.base import MAX_INFO_BYTES, Store
from dlock.errors import CorruptLock, NotFound, UsageError
from dlock.model import Kind

LOCK_NAME = "dataset_lock.lock"
VERSION_INFO = "version_control_info.json"
FIRST_COMMIT = "firstdbf9474d461a19e9333c2fd19b46115348f"
# Deep Lake's commit ids are 40 lowercase hex digits (or FIRST_COMMIT). Ids read from the
# store become paths (versions/<id>/), so nothing else is ever used as one.
COMMIT_ID = re.compile(r"[0-9a-f]{40}")
# Deep Lake 3.9 also takes short (10 s) locks at the root while it writes these files.
SHORT_LOCKS = ("version_control_info.lock", "queries.lock")


# Datasets on network stores this process has seen exist, by (URL, filesystem): see
# DatasetLayout._known_to_exist.
_EXISTING: dict[tuple[str, int], object] = {}
MAX_REMEMBERED = 4096


@dataclasses.dataclass(frozen=True)
class LockFile:
    path: str
    version: str | None = None
    branch: str | None = None


@dataclasses.dataclass(frozen=True)
class Layout:
    kind: Kind  # DEEPLAKE or DIRECTORY
    target_lock: LockFile  # the one acquire takes
    all_locks: tuple[LockFile, ...]


def is_commit_id(text: str) -> bool:
    return text == FIRST_COMMIT or COMMIT_ID.fullmatch(text) is not None


class DatasetLayout:
    """The lock files of one dataset on a store, read from the store itself."""

    def __init__(self, store: Store, dataset: str, target: str, options: Options) -> None:
        self.store = store
        self.dataset = dataset
        self.target = target
        self.options = options

    def layout(self) -> Layout:
        """Every lock file of the dataset, and the one acquire takes."""
        kind, target_lock, branches = self.locate()
        heads = {commit: branch for branch, commit in branches.items()}
        locks = [LockFile(self.store.join(self.dataset, name)) for name in (LOCK_NAME, *SHORT_LOCKS)]
        for commit in sorted(filter(is_commit_id, self.store.list_dirs(self.store.join(self.dataset, "versions")))):
            path = self.store.join(self.dataset, "versions", commit, LOCK_NAME)
            locks.append(LockFile(path, commit, heads.get(commit)))
        by_path = {lock.path: index for index, lock in enumerate(locks)}
        if target_lock.path in by_path:
            locks[by_path[target_lock.path]] = target_lock
        else:
            locks.append(target_lock)
        return Layout(kind, target_lock, tuple(locks))

    def locate(self) -> tuple[Kind, LockFile, dict[str, str]]:
        """(kind, the lock acquire takes, branch heads) in as few requests as possible:
        version_control_info.json first, since its presence also proves the dataset exists."""
        info = self._version_info()
        if info is None and not self._known_to_exist():
            raise NotFound(f"{self.target}: {self.store.missing_reason(self.dataset)}")
        branches, commits = info or ({}, set())
        return (Kind.DEEPLAKE if info else Kind.DIRECTORY), self._target_lock(branches, commits), branches

    def _known_to_exist(self) -> bool:
        """Is the dataset there? Over a network each answer is a listing request, so a yes is
        remembered for this process: a dataset seen once is no typo, and if it is deleted
        since, the worst is a lock file written where it was, removed again at release.
        Which lock file to take is never remembered: version_control_info.json is read each time."""
        key = (self.store.url(self.dataset), id(getattr(self.store, "fs", None)))
        if key in _EXISTING:
            return True
        if not self.store.is_dir(self.dataset):
            return False
        if self.store.parallel_io:
            if len(_EXISTING) >= MAX_REMEMBERED:
                _EXISTING.clear()
            _EXISTING[key] = getattr(self.store, "fs", None)  # the filesystem kept: its id stays its own
        return True

    def _version_info(self) -> tuple[dict[str, str], set[str]] | None:
        path = self.store.join(self.dataset, VERSION_INFO)
        stored = self.store.read(path, limit=MAX_INFO_BYTES)
        if stored is None:
            return None
        where = self.store.url(path)
        if stored.odd or stored.size is not None:
            raise CorruptLock(f"{where} is {stored.odd or 'larger than 32 MiB'}, not Deep Lake's version record; "
                              "dlock cannot tell which commit Deep Lake locks.")
        import json  # only for a Deep Lake dataset: off the start-up path of every other target

        try:
            document = json.loads(stored.data)
            branches = {str(name): str(head) for name, head in document["branches"].items()}
            commits = {str(commit) for commit in document.get("commits", {})}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CorruptLock(
                f"{where} cannot be read, so dlock cannot tell which commit Deep Lake locks."
            ) from None
        for name, head in branches.items():
            if not is_commit_id(head):
                raise CorruptLock(f"{where}: branch {name!r} names the head {head!r}, which is not a Deep Lake "
                                  "commit id; dlock uses no such name as a path. Inspect the file.")
            if commits and head not in commits:
                raise CorruptLock(f"{where}: the head {head!r} of branch {name!r} is not among its commits; "
                                  "dlock locks only a commit Deep Lake records. Inspect the file.")
        return branches, {commit for commit in commits if is_commit_id(commit)} | set(branches.values())

    def _target_lock(self, branches: dict[str, str], commits: set[str]) -> LockFile:
        root = LockFile(self.store.join(self.dataset, LOCK_NAME))
        commit = self.options.commit
        if commit is not None and not is_commit_id(commit):
            raise UsageError(f"{self.target}: {commit!r} is not a Deep Lake commit id (40 hex digits).")
        if commit is not None and commit != FIRST_COMMIT and commit not in commits:
            # A typo must not create a lock that guards nothing.
            where = "it has no such commit" if branches else "it is not a Deep Lake dataset"
            raise UsageError(f"{self.target}: cannot lock commit {commit!r}: {where}.")
        if commit is None and branches:
            if self.options.branch not in branches:
                known = ", ".join(sorted(branches))
                raise UsageError(f"{self.target}: no branch {self.options.branch!r} (branches: {known}).")
            commit = branches[self.options.branch]
        branch = next((name for name, head in branches.items() if head == commit), None)
        if commit is None or commit == FIRST_COMMIT:
            return dataclasses.replace(root, version=commit, branch=branch)
        return LockFile(self.store.join(self.dataset, "versions", commit, LOCK_NAME), commit, branch)
