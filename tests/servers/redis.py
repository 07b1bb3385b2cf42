"""Redis from Debian's package: a server of its own on a free loopback port, without
persistence, always stopped in `finally`; one that speaks only TLS (Debian's build has
it); for failover, a primary, its replica and a sentinel (`redis-server --sentinel`, so
the redis-sentinel package is not needed).

LOCK_TARGETS: a key on the session's server is a lock target (`lock_target_redis`), so the
behavioural suite runs there wherever a verb means the same as on lock files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from servers._util import free_port, free_port_pair, stop, wait_for_port
from servers._certs import TlsFiles, make_tls_files

LOCK_TARGETS = ["redis"]


@dataclasses.dataclass
class RedisServer:
    port: int
    directory: Path
    config: Path | None = None  # a config file first on the command line (a sentinel's)
    process: subprocess.Popen | None = None  # type: ignore[type-arg]
    tls: TlsFiles | None = None  # TLS only on `port`, no plain port

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}"

    def start(self, *extra: str) -> bool:
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert),
                     "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"]
        self.process = subprocess.Popen(
            ["redis-server", *([str(self.config)] if self.config else []), *ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), *extra],
            stdout=open(self.directory / "redis.log", "wb"), stderr=subprocess.STDOUT)
        return wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing more sent to replicas."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def _server(directory: Path, *extra: str, config: Path | None = None, tls: TlsFiles | None = None,
            port: int | None = None) -> Iterator[RedisServer]:
    from conftest import server_unavailable

    if shutil.which("redis-server") is None:
        server_unavailable("Redis (Debian package redis-server; scripts/install-system-deps.sh installs it)")
    server = RedisServer(port or free_port(), directory, config, tls=tls)
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
def redis_tls(tmp_path: Path) -> Iterator[RedisServer]:
    """A server that speaks only TLS, with a throwaway CA (`server.tls.ca`) of the test's own."""
    with _server(tmp_path, tls=make_tls_files(tmp_path)) as server:
        yield server


@pytest.fixture
def redis_cluster_node(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis Cluster of one node that serves every hash slot."""
    import redis

    cluster = ("--cluster-enabled", "yes", "--cluster-config-file", str(tmp_path / "nodes.conf"))
    # A cluster node also listens on its port + 10000, so its port must be 55535 or less.
    with _server(tmp_path, *cluster, port=free_port_pair(10000, 55535)) as server, \
            redis.Redis(port=server.port, socket_timeout=2) as client:
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 20
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, f"cluster not ready (log: {tmp_path}/redis.log)"
            time.sleep(0.05)
        yield server


@pytest.fixture
def lock_target_redis(redis_server: RedisServer):  # type: ignore[no-untyped-def]
    """A fresh lock key; taken by a plain `acquire` (a Redis lock outlives its process)."""
    from conftest import DlockRunner, LockTarget

    key = f"locks/ds-{uuid.uuid4().hex[:8]}"
    return LockTarget("redis", f"{redis_server.url}/0/{key}", DlockRunner(), key)


@dataclasses.dataclass
class SentinelGroup:
    """A primary, its replica and one sentinel that watches them as master `m` (quorum 1)."""

    primary: RedisServer
    replica: RedisServer
    sentinel: RedisServer

    def primary_port(self) -> int:
        """The port the sentinel names as the current primary's."""
        import redis

        with redis.Redis(port=self.sentinel.port, socket_timeout=2) as client:
            return int(client.execute_command("SENTINEL", "get-master-addr-by-name", "m")[1])

    def promoted_replica(self) -> bool:
        """The sentinel names the replica as primary and the replica says it is one."""
        import redis

        try:
            with redis.Redis(port=self.replica.port, socket_timeout=2) as client:
                return self.primary_port() == self.replica.port and client.role()[0] == b"master"
        except redis.RedisError:
            return False

    def ready(self) -> bool:
        """The replica is in sync and the sentinel knows it (else a failover finds no replica)."""
        import redis

        with redis.Redis(port=self.replica.port, socket_timeout=2) as replica, \
                redis.Redis(port=self.sentinel.port, socket_timeout=2) as sentinel:
            return (replica.info("replication")["master_link_status"] == "up"
                    and len(sentinel.execute_command("SENTINEL", "replicas", "m")) == 1)


def _sentinel_config(directory: Path, primary_port: int) -> Path:
    # The sentinel rewrites its config file as it learns the topology: a file of its own.
    config = directory / "sentinel.conf"
    config.write_text(f"sentinel monitor m 127.0.0.1 {primary_port} 1\n"
                      "sentinel down-after-milliseconds m 500\n"
                      "sentinel failover-timeout m 2000\n")
    return config


@pytest.fixture
def redis_sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """Fresh ports and servers for each test, all stopped in `finally` (a killed one too)."""
    directories = {name: tmp_path / name for name in ("primary", "replica", "sentinel")}
    for directory in directories.values():
        directory.mkdir()
    with contextlib.ExitStack() as servers:
        primary = servers.enter_context(_server(directories["primary"], "--repl-diskless-sync-delay", "0"))
        replica = servers.enter_context(_server(directories["replica"], "--replicaof", "127.0.0.1", str(primary.port)))
        config = _sentinel_config(directories["sentinel"], primary.port)
        sentinel = servers.enter_context(_server(directories["sentinel"], "--sentinel", config=config))
        group = SentinelGroup(primary, replica, sentinel)
        deadline = time.monotonic() + 20
        while not group.ready():
            assert time.monotonic() < deadline, f"replica or sentinel not ready (logs: {tmp_path})"
            time.sleep(0.05)
        yield group
