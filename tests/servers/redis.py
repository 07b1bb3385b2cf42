"""Redis from Debian's package: a server of its own on a free loopback port, without
persistence, always stopped in `finally`.

LOCK_TARGETS: a key on the session's server is a lock target (`lock_target_redis`), so the
behavioural suite runs there wherever a verb means the same as on lock files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from servers._util import free_port, stop, wait_for_port

LOCK_TARGETS = ["redis"]


@dataclasses.dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen | None = None  # type: ignore[type-arg]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, *extra: str) -> bool:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), *extra],
            stdout=open(self.directory / "redis.log", "wb"), stderr=subprocess.STDOUT)
        return wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


@contextlib.contextmanager
def _server(directory: Path, *extra: str) -> Iterator[RedisServer]:
    from conftest import server_unavailable

    if shutil.which("redis-server") is None:
        server_unavailable("Redis (Debian package redis-server; scripts/install-system-deps.sh installs it)")
    server = RedisServer(free_port(), directory)
    try:
        if not server.start(*extra):
            server_unavailable(f"Redis (log: {directory}/redis.log)")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server for the whole session."""
    with _server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_private(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, to stop in the middle of a test."""
    with _server(tmp_path) as server:
        yield server


@pytest.fixture
def lock_target_redis(redis_server: RedisServer):  # type: ignore[no-untyped-def]
    """A fresh lock key; taken by a plain `acquire` (a Redis lock outlives its process)."""
    from conftest import DlockRunner, LockTarget

    key = f"locks/ds-{uuid.uuid4().hex[:8]}"
    return LockTarget("redis", f"{redis_server.url}/0/{key}", DlockRunner(), key)
