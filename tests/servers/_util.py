"""Helpers for starting real servers on loopback."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_pair(offset: int, highest: int) -> int:
    """A free port at most `highest` whose port + `offset` is free too (a Redis Cluster node
    listens on its port and on port + 10000, so its port must be 55535 or less)."""
    import random

    for _ in range(500):
        port = random.randint(20000, highest)
        with contextlib.ExitStack() as held:
            try:
                for candidate in (port, port + offset):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port pair (+{offset}) at or below {highest}")


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> bool:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serving(argv: list[str], port: int, log: Path, what: str, **popen: object) -> Iterator[str]:
    """A server process on loopback `port`, its output in `log`: its URL while it runs, a
    failure in CI (a skip elsewhere) when it does not start."""
    from conftest import server_unavailable

    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, **popen)  # type: ignore[call-overload]
    try:
        if not wait_for_port(port, proc):
            server_unavailable(f"{what} (log: {log})")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
