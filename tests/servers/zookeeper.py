"""ZooKeeper from Debian's package: a standalone server and a 3-node ensemble on loopback.

Fresh ports and dataDirs every time, and always stopped in `finally`: an orphan from an
earlier run once joined a new ensemble's election.

LOCK_TARGETS: a lock node on the standalone server is a lock target (`lock_target_zk`),
so the behavioural suite runs there wherever a verb means the same as on lock files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from servers._util import free_port, stop

JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/zookeeper-jute.jar",
        "/usr/share/java/slf4j-api.jar", "/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar"]
LOCK_TARGETS = ["zk"]
TICK_MS = 250  # sessions of 1 s are allowed (2 ticks), so expiry tests are quick


@dataclasses.dataclass
class ZkServer:
    port: int
    peer_port: int
    election_port: int
    directory: Path
    process: subprocess.Popen | None = None  # type: ignore[type-arg]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, peers: list[ZkServer] | None = None, myid: int = 1) -> None:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            f"tickTime={TICK_MS}", "initLimit=20", "syncLimit=10", f"dataDir={data}",
            f"clientPort={self.port}", "clientPortAddress=127.0.0.1", "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr,mntr", "minSessionTimeout=500", "maxSessionTimeout=60000",
        ]
        if peers:
            (data / "myid").write_text(str(myid))
            lines += [f"server.{i}=127.0.0.1:{p.peer_port}:{p.election_port}" for i, p in enumerate(peers, 1)]
        (self.directory / "zoo.cfg").write_text("\n".join(lines) + "\n")
        (self.directory / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, FILE\nlog4j.appender.FILE=org.apache.log4j.FileAppender\n"
            f"log4j.appender.FILE.File={self.directory}/zookeeper.log\n"
            "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.FILE.layout.ConversionPattern=%d %p %c: %m%n\n")
        self.process = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", ":".join(JARS), f"-Dlog4j.configuration=file:{self.directory}/log4j.properties",
             "-Dzookeeper.log.dir=" + str(self.directory), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
             str(self.directory / "zoo.cfg")],
            stdout=open(self.directory / "stdout.log", "wb"), stderr=subprocess.STDOUT)

    def mode(self) -> str | None:
        """The `Mode:` line of `srvr` (standalone, leader, follower), or None while not serving."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"srvr")
                reply = sock.recv(4096).decode(errors="replace")
        except OSError:
            return None
        for line in reply.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


def _new_server(root: Path, name: str) -> ZkServer:
    return ZkServer(free_port(), free_port(), free_port(), root / name)


def _wait_serving(servers: list[ZkServer], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s.mode() for s in servers):
            return True
        if any(s.process is not None and s.process.poll() is not None for s in servers):
            return False
        time.sleep(0.1)
    return False


def _available() -> bool:
    return all(os.path.exists(jar) for jar in JARS[:1]) and shutil.which("java") is not None


@contextlib.contextmanager
def _standalone(root: Path) -> Iterator[ZkServer]:
    from conftest import server_unavailable

    if not _available():
        server_unavailable("ZooKeeper (Debian package zookeeper; scripts/install-system-deps.sh installs it)")
    server = _new_server(root, "standalone")
    try:
        server.start()
        if not _wait_serving([server]):
            server_unavailable(f"ZooKeeper (log: {server.directory}/zookeeper.log)")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZkServer]:
    """A standalone server for the whole session."""
    with _standalone(tmp_path_factory.mktemp("zk")) as server:
        yield server


@pytest.fixture
def lock_target_zk(zookeeper: ZkServer):  # type: ignore[no-untyped-def]
    """A fresh lock node; held only by a living `acquire --hold` (a ZooKeeper lock ends with its session)."""
    from conftest import DlockRunner, LockTarget

    path = f"/locks/ds-{uuid.uuid4().hex[:8]}"
    return LockTarget("zk", f"zk://{zookeeper.address}{path}", DlockRunner(), path, hold_options=("--hold",))


@pytest.fixture
def zk_private(tmp_path: Path) -> Iterator[ZkServer]:
    """A standalone server of the test's own, to stop in the middle of a test."""
    with _standalone(tmp_path) as server:
        yield server


@pytest.fixture
def zk_ensemble(tmp_path: Path) -> Iterator[list[ZkServer]]:
    """A fresh 3-node ensemble on loopback, for failover tests."""
    from conftest import server_unavailable

    if not _available():
        server_unavailable("ZooKeeper (Debian package zookeeper)")
    servers = [_new_server(tmp_path, f"node{i}") for i in (1, 2, 3)]
    try:
        for myid, server in enumerate(servers, 1):
            server.start(peers=servers, myid=myid)
        if not _wait_serving(servers):
            server_unavailable(f"a 3-node ZooKeeper ensemble (logs under {tmp_path})")
        yield servers
    finally:
        for server in servers:
            server.stop()

