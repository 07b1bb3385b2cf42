"""Session trouble and a 3-node ensemble: a holder keeps its lock through a node failure,
and stops its command (exit 3) once its session cannot be alive any more."""

from __future__ import annotations

import json
import time

from conftest import DlockRunner


def wait_until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_stopping_the_server_under_run_terminates_the_command_and_exits_3(zk_private, tmp_path):
    cli = DlockRunner()
    target = f"zk://{zk_private.address}/locks/ds"
    marker = tmp_path / "finished"
    runner = cli.popen("run", target, "--zk-timeout", "2", "--grace", "1", "--", "sh", "-c", f"sleep 60; touch {marker}")
    wait_until(lambda: cli("status", target, "--zk-timeout", "2").code == 1)
    stopped = time.monotonic()
    zk_private.stop()
    assert runner.wait(timeout=30) == 3
    elapsed = time.monotonic() - stopped
    stderr = runner.stderr.read()
    assert "suspended" in stderr and "lock lost" in stderr
    assert 1.5 < elapsed < 15, elapsed  # kept through the session timeout (2 s), not longer
    assert not marker.exists()


def test_ensemble_holder_survives_one_node_and_status_keeps_answering(zk_ensemble):
    cli = DlockRunner()
    hosts = ",".join(server.address for server in zk_ensemble)
    target = f"zk://{hosts}/locks/ds"
    runner = cli.popen("run", target, "--zk-timeout", "4", "--", "sleep", "60")
    wait_until(lambda: cli("status", target).code == 1)
    leader = next(server for server in zk_ensemble if server.mode() == "leader")
    leader.stop()  # the worst single failure: an election follows
    time.sleep(6)  # longer than the session timeout
    assert runner.poll() is None, "the holder must keep its lock through one node's failure"
    status = cli("status", target, "--json", "--zk-timeout", "4")
    assert status.code == 1, status.err
    assert json.loads(status.out)["targets"][0]["locks"][0]["holder"]["mode"] == "write"
    # Quorum lost: status fails within its timeout, and the holder gives up once its
    # session cannot be alive any more.
    others = [server for server in zk_ensemble if server is not leader]
    others[0].stop()
    started = time.monotonic()
    lost = cli("status", target, "--zk-timeout", "2")
    assert lost.code == 4 and time.monotonic() - started < 15
    assert runner.wait(timeout=30) == 3
