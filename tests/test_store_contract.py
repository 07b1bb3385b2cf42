"""The Store contract, the same over every store: local disk, memory, S3 (moto), GCS
(fake-gcs-server) and the generic fsspec fallback (Deep Lake's write-wait-verify).

Create only if absent, replace and delete only if unchanged, reads bounded; on the
stores that call themselves atomic, racing creates have exactly one winner.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid

import pytest

from conftest import Site
from dlock.stores.base import MAX_LOCK_BYTES, AlreadyExists, Conflict, NotAtomicWarning, Store
from dlock.targets import open_backend

STORES = ["local", "memory", "s3", "gcs", "azure", "fsspec"]
ATOMIC_STORES = ["local", "memory", "s3", "gcs", "azure"]
EMULATOR_LIMITS = {
    ("gcs", "delete"): "emulator limit: fake-gcs-server ignores ifGenerationMatch on DELETE (real GCS honours it)",
}


@dataclasses.dataclass
class Place:
    """A store and a fresh directory (or prefix) in it for one test's objects."""

    name: str
    store: Store
    directory: str

    def path(self, name: str = "dataset_lock.lock") -> str:
        return self.store.join(self.directory, name)


def _open(name: str, request: pytest.FixtureRequest) -> Place:
    if name == "memory":
        url = f"memory://contract-{uuid.uuid4().hex[:10]}"
    elif name in ("local", "fsspec"):
        directory = request.getfixturevalue("tmp_path") / "ds"
        directory.mkdir()
        # local:// is fsspec's LocalFileSystem through the generic store, not dlock's local store.
        url = f"local://{directory}" if name == "fsspec" else str(directory)
    else:
        site: Site = request.getfixturevalue(f"site_{name}")
        url = site.new_dataset()
    if name == "fsspec":
        with pytest.warns(NotAtomicWarning):
            backend = open_backend(url)
    else:
        backend = open_backend(url)
    return Place(name, backend.store, backend.dataset)


@pytest.fixture(params=STORES)
def place(request: pytest.FixtureRequest) -> Place:
    return _open(request.param, request)


@pytest.fixture(params=ATOMIC_STORES)
def atomic_place(request: pytest.FixtureRequest) -> Place:
    return _open(request.param, request)


def expect_emulator_limit(place: Place, operation: str, request: pytest.FixtureRequest) -> None:
    reason = EMULATOR_LIMITS.get((place.name, operation))
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


def test_the_fallback_store_says_it_is_not_atomic(place: Place):
    assert place.store.atomic is (place.name != "fsspec")


def test_read_of_an_absent_object_is_none(place: Place):
    assert place.store.read(place.path()) is None


def test_create_only_if_absent_and_replace_only_if_unchanged(place: Place):
    store, path = place.store, place.path()
    first = store.create(path, b"one")
    assert store.read(path).version == first.version
    with pytest.raises(AlreadyExists):
        store.create(path, b"two")
    second = store.replace(path, b"two", first)
    assert second.version != first.version and store.read(path).data == b"two"
    with pytest.raises(Conflict):
        store.replace(path, b"three", first)  # a version that is no longer there
    assert store.read(path).data == b"two"


def test_delete_only_if_unchanged(place: Place, request: pytest.FixtureRequest):
    expect_emulator_limit(place, "delete", request)
    store, path = place.store, place.path()
    first = store.create(path, b"one")
    second = store.replace(path, b"two", first)
    with pytest.raises(Conflict):
        store.delete(path, first)
    assert store.read(path).data == b"two"
    store.delete(path, second)
    assert store.read(path) is None


def test_read_is_bounded_and_reports_the_size(place: Place):
    store, path = place.store, place.path()
    big = b"x" * (MAX_LOCK_BYTES + 1)
    store.write_data(path, big)
    cut = store.read(path)
    assert cut is not None and cut.size == len(big)
    assert len(cut.data) <= MAX_LOCK_BYTES
    whole = store.read(path, limit=len(big))
    assert whole is not None and whole.size is None and whole.data == big


def test_racing_creates_have_exactly_one_winner(atomic_place: Place):
    store, path = atomic_place.store, atomic_place.path()
    start = threading.Barrier(8)
    winners: list[bytes] = []
    failures: list[BaseException] = []

    def racer(number: int) -> None:
        data = f"racer {number}".encode()
        start.wait()
        try:
            store.create(path, data)
            winners.append(data)
        except AlreadyExists:
            pass
        except BaseException as exc:  # noqa: BLE001  (reported below, not lost in a thread)
            failures.append(exc)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(winners) == 1
    assert store.read(path).data == winners[0]
