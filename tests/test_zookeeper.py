"""zk:// targets against a real ZooKeeper (Debian's package), interoperating with kazoo's recipes.

What a verb does the same as on lock files (status, wait, run, release --force, signals)
is tested in test_behaviour.py on every lock target, this one included; here is what only
ZooKeeper has: kazoo's recipes, shared locks, waiting in line, ACLs, --all, subtrees."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from conftest import TESTS, DlockRunner, count_under_dlock_run
from servers._util import free_port

pytestmark = pytest.mark.usefixtures("zookeeper")


@pytest.fixture
def zk_cli() -> DlockRunner:
    return DlockRunner()


@pytest.fixture
def zk_target(zookeeper) -> str:
    return f"zk://{zookeeper.address}/locks/ds-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kazoo(zookeeper):  # type: ignore[no-untyped-def]
    from kazoo.client import KazooClient

    client = KazooClient(hosts=zookeeper.address, timeout=5)
    client.start(timeout=10)
    yield client
    client.stop()
    client.close()


def node_path(target: str) -> str:
    return "/" + target.split("/", 3)[3]


def hold(cli: DlockRunner, target: str, *extra: str) -> subprocess.Popen:  # type: ignore[type-arg]
    holder = cli.popen("acquire", target, "--hold", *extra)
    assert len(holder.stdout.readline().strip()) == 32, holder.stderr.read() if holder.poll() is not None else ""
    return holder


def kazoo_holder(zookeeper, target: str, kind: str, identifier: str) -> subprocess.Popen:  # type: ignore[no-untyped-def,type-arg]
    proc = subprocess.Popen([sys.executable, str(TESTS / "helpers" / "kazoo_holder.py"), zookeeper.address,
                             node_path(target), kind, identifier], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def finish(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    proc.stdin.close()
    proc.wait(timeout=10)


def test_the_exclusion_table_decides_who_holds_and_whom_each_waiter_watches():
    from dlock.backends.zookeeper.recipe import contenders, holds, predecessor

    line = contenders(["b__rlock__0000000002", "a__rlock__0000000001", "c__lock__0000000003",
                       "d__rlock__0000000004", "e__rlock__0000000005", "f__lock__0000000006", "config"])
    a, b, c, d, e, f = line
    assert [x.name[0] for x in line] == list("abcdef"), "lock order, non-contenders left out"
    assert [holds(x, line) for x in line] == [True, True, False, False, False, False]
    assert predecessor(a, line) is None and predecessor(b, line) is None, "readers share"
    assert predecessor(c, line) is b, "a writer waits for the nearest earlier node"
    assert predecessor(d, line) is c and predecessor(e, line) is c, "a reader waits for the nearest earlier writer"
    assert predecessor(f, line) is e


def test_plain_acquire_explains_why_it_cannot_hold_and_exits_2(zk_cli, zk_target):
    result = zk_cli("acquire", zk_target)
    assert result.code == 2 and "--hold" in result.err and "dlock run" in result.err


def test_status_shows_the_holders_mode_node_and_session(zk_cli, zk_target):
    holder = hold(zk_cli, zk_target, "--note", "nightly")
    try:
        result = zk_cli("status", zk_target, "--json")
        assert result.code == 1
        lock = json.loads(result.out)["targets"][0]["locks"][0]
        assert lock["holder"]["mode"] == "write" and lock["holder"]["note"] == "nightly"
        assert lock["holder"]["session_id"].startswith("0x") and "__lock__" in lock["holder"]["node"]
    finally:
        holder.terminate()
        assert holder.wait(timeout=10) == 0


def test_kazoo_write_lock_blocks_dlock_and_shows_its_identifier(zk_cli, zk_target, zookeeper):
    proc = kazoo_holder(zookeeper, zk_target, "write", "etl-job-17")
    try:
        result = zk_cli("status", zk_target, "--json")
        lock = json.loads(result.out)["targets"][0]["locks"][0]
        assert result.code == 1 and lock["holder"]["identifier"] == "etl-job-17" and lock["holder"]["mode"] == "write"
        assert zk_cli("run", zk_target, "--", "true").code == 1
        assert zk_cli("run", zk_target, "--shared", "--", "true").code == 1
    finally:
        finish(proc)
    assert zk_cli("run", zk_target, "--", "true").code == 0


def test_kazoo_read_lock_admits_dlock_readers_and_blocks_writers(zk_cli, zk_target, zookeeper):
    proc = kazoo_holder(zookeeper, zk_target, "read", "reporting")
    try:
        assert zk_cli("run", zk_target, "--shared", "--", "true").code == 0
        assert zk_cli("run", zk_target, "--", "true").code == 1
    finally:
        finish(proc)


def test_dlock_holders_block_kazoo_recipes(zk_cli, zk_target, kazoo):
    path = node_path(zk_target)
    holder = hold(zk_cli, zk_target)
    try:
        assert kazoo.WriteLock(path, "w").acquire(blocking=False) is False
        assert kazoo.ReadLock(path, "r").acquire(blocking=False) is False
        assert kazoo.Lock(path, "l").acquire(blocking=False) is False
    finally:
        holder.terminate()
        holder.wait(timeout=10)
    writer = kazoo.WriteLock(path, "w2")
    assert writer.acquire(timeout=5)
    writer.release()
    reader = hold(zk_cli, zk_target, "--shared")
    try:
        shared = kazoo.ReadLock(path, "r2")
        assert shared.acquire(timeout=5), "readers share"
        shared.release()
        assert kazoo.WriteLock(path, "w3").acquire(blocking=False) is False
    finally:
        reader.terminate()
        reader.wait(timeout=10)


def test_force_release_all_removes_the_waiters_too(zk_cli, zk_target):
    holder = hold(zk_cli, zk_target)
    waiter = zk_cli.popen("acquire", zk_target, "--hold", "--timeout", "-1")
    try:
        deadline = time.monotonic() + 20
        while len(json.loads(zk_cli("status", zk_target, "--json").out)["targets"][0]["locks"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        forced = zk_cli("release", zk_target, "--force", "--yes", "--all", "--json")
        assert forced.code == 0 and len(json.loads(forced.out)["removed"]) == 2
        assert holder.wait(timeout=10) == 3
    finally:
        for proc in (holder, waiter):
            proc.terminate()
            proc.wait(timeout=10)


def test_a_waiter_whose_predecessor_gives_up_takes_the_lock_promptly_on_release(zk_cli, zk_target, kazoo):
    lock = kazoo.WriteLock(node_path(zk_target), "holder")
    assert lock.acquire(timeout=5)
    first = zk_cli.popen("acquire", zk_target, "--hold", "--timeout", "-1")
    deadline = time.monotonic() + 20
    while len(json.loads(zk_cli("status", zk_target, "--json").out)["targets"][0]["locks"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    second = zk_cli.popen("acquire", zk_target, "--hold", "--timeout", "-1")
    try:
        while len(json.loads(zk_cli("status", zk_target, "--json").out)["targets"][0]["locks"]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        first.terminate()  # the node the second waiter watches goes; the holder's stays
        assert first.wait(timeout=5) == 143
        time.sleep(2.5)  # a poller would be at its slowest interval by now
        assert second.poll() is None
        released = time.monotonic()
        lock.release()
        assert len(second.stdout.readline().strip()) == 32
        assert time.monotonic() - released < 0.5
    finally:
        second.terminate()
        second.wait(timeout=10)


def test_wait_is_woken_by_the_release_not_by_polling(zk_cli, zk_target, kazoo):
    lock = kazoo.WriteLock(node_path(zk_target), "holder")
    assert lock.acquire(timeout=5)
    waiter = zk_cli.popen("wait", zk_target, "--timeout", "60")
    time.sleep(2.5)  # a poller would be at its slowest interval by now
    assert waiter.poll() is None
    released = time.monotonic()
    lock.release()
    assert waiter.wait(timeout=10) == 0
    assert time.monotonic() - released < 0.5


def test_unreachable_bad_hosts_and_non_lock_nodes(zk_cli, zookeeper, kazoo):
    started = time.monotonic()
    unreachable = zk_cli("status", f"zk://127.0.0.1:{free_port()}/locks/x", "--zk-timeout", "2")
    assert unreachable.code == 4 and "cannot reach ZooKeeper" in unreachable.err
    assert time.monotonic() - started < 15
    assert zk_cli("status", "zk://127.0.0.1:notaport/locks/x").code == 2
    assert zk_cli("status", "zk:///locks/x").code == 2  # no hosts and no DLOCK_ZK_HOSTS
    kazoo.ensure_path("/config/app/settings")
    not_lock = zk_cli("status", f"zk://{zookeeper.address}/config")
    assert not_lock.code == 2 and "not a lock node" in not_lock.err
    with_env = zk_cli("status", "zk:///locks/from-env", env={"DLOCK_ZK_HOSTS": zookeeper.address})
    assert with_env.code == 0


def test_acl_protected_node_needs_credentials(zk_cli, zookeeper, kazoo):
    from kazoo.security import make_digest_acl

    path = f"/secure-{uuid.uuid4().hex[:6]}"
    kazoo.create(path, acl=[make_digest_acl("ops", "s3cret", all=True)])
    target = f"zk://{zookeeper.address}{path}"
    denied = zk_cli("status", target)
    assert denied.code == 6 and "--zk-auth" in denied.err
    allowed = zk_cli("status", target, "--zk-auth", "ops:s3cret")
    assert allowed.code == 0, allowed.err
    in_url = zk_cli("status", f"zk://ops:s3cret@{zookeeper.address}{path}")
    assert in_url.code == 0 and "s3cret" not in in_url.out + in_url.err


def test_eight_processes_under_dlock_run_on_zookeeper_lose_no_update(zk_cli, zk_target, tmp_path):
    assert count_under_dlock_run(zk_cli, zk_target, tmp_path) == 40


def test_list_finds_every_lock_node_in_a_subtree_and_clean_leaves_live_sessions_alone(zk_cli, zookeeper, kazoo):
    root = f"/fleet-{uuid.uuid4().hex[:6]}"
    kazoo.ensure_path(f"{root}/team/config")  # not a lock node: walked through, not listed
    mine = hold(zk_cli, f"zk://{zookeeper.address}{root}/team/a")
    theirs = kazoo.WriteLock(f"{root}/b", "kazoo-job")
    assert theirs.acquire(timeout=5)
    try:
        result = zk_cli("list", f"zk://{zookeeper.address}{root}", "--json")
        assert result.code == 0, result.err
        rows = [json.loads(line) for line in result.out.splitlines()]
        assert [row["dataset"] for row in rows] == [f"{root}/b", f"{root}/team/a"]
        assert rows[0]["holder"]["identifier"] == "kazoo-job" and rows[1]["holder"]["mode"] == "write"
        assert "2 locks: 2 held" in result.err
        time.sleep(1.2)
        cleaned = zk_cli("clean", f"zk://{zookeeper.address}{root}", "--yes", "--older-than", "1s")
        assert cleaned.code == 0 and "Nothing to remove" in cleaned.err
        assert zk_cli("status", f"zk://{zookeeper.address}{root}/b").code == 1
    finally:
        theirs.release()
        mine.terminate()
        mine.wait(timeout=10)


def test_lock_block_on_zookeeper_notices_a_forced_release_and_raises_lock_lost(zk_cli, zk_target):
    import dlock

    with pytest.raises(dlock.LockLost):
        with dlock.lock(zk_target, timeout=5) as lease:
            assert zk_cli("release", zk_target, "--force", "--yes").code == 0
            deadline = time.monotonic() + 5
            while not lease.lost:  # the node watch reports it; no polling
                assert time.monotonic() < deadline
                time.sleep(0.02)
            with pytest.raises(dlock.LockLost):
                lease.confirm()
