"""Several targets in one `status` or `wait`: checked concurrently, reported in the order given,
exit codes as for one target after another."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path


def closed_ports(count: int) -> list[int]:
    """Loopback ports nothing listens on: bound, then closed (a connect is refused)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def unreachable_zookeeper_targets(count: int) -> list[str]:
    ports = closed_ports(4)
    return [f"zk://127.0.0.1:{ports[i % len(ports)]}/locks/t{i:03d}" for i in range(count)]


def test_status_of_many_unreachable_zookeeper_targets_answers_concurrently_in_the_order_given(local_cli, tmp_path):
    zk_timeout, count = 2, 48
    unreachable = unreachable_zookeeper_targets(count)
    local = [tmp_path / name for name in ("free-a", "held-b", "free-c")]
    for path in local:
        path.mkdir()
    assert local_cli("acquire", str(local[1])).code == 0
    targets = [str(local[0]), *unreachable[:24], str(local[1]), *unreachable[24:], str(local[2])]

    started = time.monotonic()
    result = local_cli("status", *targets, "--json", "--zk-timeout", str(zk_timeout), timeout=300)
    elapsed = time.monotonic() - started

    serial = count * zk_timeout  # each unreachable target waits out --zk-timeout
    assert elapsed < serial / 4, f"{elapsed:.1f}s for {count} unreachable targets: checked one after another?"
    assert result.code == 4  # a failure's exit code wins over held, as with one target after another
    document = json.loads(result.out)
    assert [t["target"] for t in document["targets"]] == [str(path) for path in local]
    assert [t["state"] for t in document["targets"]] == ["absent", "held", "absent"]
    assert [e["target"] for e in document["errors"]] == unreachable
    assert [line.split(": ")[1] for line in result.err.splitlines()] == unreachable
    assert "cannot reach ZooKeeper" in result.err


def test_plain_status_of_several_targets_lists_them_in_the_order_given(local_cli, tmp_path):
    targets = [tmp_path / f"ds{i:02d}" for i in range(20)]
    for path in targets:
        path.mkdir()
    local_cli("acquire", str(targets[7]))
    result = local_cli("status", *map(str, reversed(targets)))
    assert result.code == 1
    shown = [line.split(": ")[0] for line in result.out.splitlines() if line.startswith(str(tmp_path))]
    assert shown == [str(path) for path in reversed(targets)]


def test_wait_for_several_targets_returns_once_every_one_is_free(local_cli, tmp_path):
    targets = [tmp_path / name for name in ("a", "b", "c")]
    for path in targets:
        path.mkdir()
    token = local_cli("acquire", str(targets[1])).out.strip()
    waiter = local_cli.popen("wait", *map(str, targets), "--timeout", "60", "--json")
    time.sleep(1.5)
    assert waiter.poll() is None  # b is still held
    assert local_cli("release", str(targets[1]), "--token", token).code == 0
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0
    document = json.loads(out)
    assert document["free"] is True and document["targets"] == [str(path) for path in targets]


def test_wait_for_several_targets_times_out_naming_the_one_still_locked(local_cli, tmp_path):
    targets = [tmp_path / name for name in ("a", "b", "c")]
    for path in targets:
        path.mkdir()
    local_cli("acquire", str(targets[2]))
    result = local_cli("wait", *map(str, targets), "--timeout", "1")
    assert result.code == 1
    assert result.err.strip() == f"{targets[2]}: still locked after 1."


def test_wait_stops_at_an_unreachable_target_while_another_is_held(local_cli, tmp_path: Path):
    held = tmp_path / "held"
    held.mkdir()
    local_cli("acquire", str(held))
    [unreachable] = unreachable_zookeeper_targets(1)
    # No --timeout: only the error can end it, and a lock that stays held must not keep dlock waiting.
    result = local_cli("wait", str(held), unreachable, "--zk-timeout", "1", timeout=60)
    assert result.code == 4
    assert unreachable in result.err and "cannot reach ZooKeeper" in result.err
