"""redis:// targets against a real Redis (Debian's package), interoperating with redis-py's Lock.

What a verb does the same as on lock files (status, wait, run, release --force, signals)
is tested in test_behaviour.py on every lock target, this one included; here is what only
Redis has: URLs and credentials, redis-py and the prefixed libraries' keys, keys without a
TTL, expiry of a dead holder's key, a server that dies under `run`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import pytest

from conftest import TESTS, DlockRunner, count_under_dlock_run
from servers._util import free_port

pytestmark = pytest.mark.usefixtures("redis_server")


@pytest.fixture
def cli() -> DlockRunner:
    return DlockRunner()


@pytest.fixture
def key() -> str:
    return f"locks/ds-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def target(redis_server, key) -> str:  # type: ignore[no-untyped-def]
    return f"{redis_server.url}/0/{key}"


@pytest.fixture
def r(redis_server):  # type: ignore[no-untyped-def]
    import redis

    client = redis.Redis(port=redis_server.port, socket_timeout=10)  # MONITOR waits no longer
    yield client
    client.close()


def redis_py_holder(url: str, name: str, timeout: str = "60") -> subprocess.Popen:  # type: ignore[type-arg]
    proc = subprocess.Popen([sys.executable, str(TESTS / "helpers" / "redis_py_holder.py"), url, name, timeout],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def finish(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0


def status(cli: DlockRunner, target: str, **env: str) -> tuple[dict, int]:  # type: ignore[type-arg]
    result = cli("status", target, "--json", env=env)
    assert result.code in (0, 1, 5), result.err
    return json.loads(result.out)["targets"][0], result.code


# -- targets -----------------------------------------------------------------------------

def test_the_lock_key_is_redis_py_s_and_the_holder_json_sits_beside_it(cli, target, key, r):
    token = cli("acquire", target, "--ttl", "60", "--note", "ingest").out.strip()
    assert r.get(key) == token.encode(), "the key's value is the token, as redis-py's Lock writes it"
    assert 55_000 < r.pttl(key) <= 60_000 and 55_000 < r.pttl(f"{key}:dlock") <= 60_000
    found, code = status(cli, target)
    lock = found["locks"][0]
    assert code == 1 and lock["format"] == "dlock" and lock["holder"]["note"] == "ingest"
    assert 55 < lock["expires_at"] - time.time() <= 60
    assert token not in json.dumps(found)


def test_server_from_dlock_redis_url_and_the_password_never_shown(tmp_path, key):
    from servers.redis import _server

    with _server(tmp_path, "--requirepass", "s3cret") as server:
        cli = DlockRunner()
        url = f"redis://:s3cret@127.0.0.1:{server.port}"
        taken = cli("acquire", f"redis:///0/{key}", env={"DLOCK_REDIS_URL": url})
        assert taken.code == 0, taken.err
        held = cli("status", f"{url}/0/{key}")
        assert held.code == 1 and "s3cret" not in held.out + held.err
        assert f"redis://127.0.0.1:{server.port}/0/{key}" in held.out
        for password, word in (("", "NOAUTH"), (":wrong@", "WRONGPASS")):
            refused = cli("status", f"redis://{password}127.0.0.1:{server.port}/0/{key}")
            assert refused.code == 4 and "credentials" in refused.err, refused.err
            assert "wrong" not in refused.err and "Traceback" not in refused.err


def test_a_user_the_acl_refuses_gets_exit_6(tmp_path, key):
    import redis

    from servers.redis import _server

    with _server(tmp_path) as server:
        redis.Redis(port=server.port).execute_command("ACL", "SETUSER", "reader", "on", ">pw", "~*", "&*", "+@read", "+ping")
        refused = DlockRunner()("acquire", f"redis://reader:pw@127.0.0.1:{server.port}/0/{key}")
        assert refused.code == 6 and "NOPERM" in refused.err and "pw@" not in refused.err, refused.err


def test_unreachable_server_exits_4_within_seconds(cli):
    started = time.monotonic()
    result = cli("status", f"redis://127.0.0.1:{free_port()}/0/k")
    assert result.code == 4 and "cannot reach Redis" in result.err
    assert time.monotonic() - started < 5


def test_a_target_names_server_credentials_database_and_a_key_with_slashes(monkeypatch):
    from dlock.backends.base import shown
    from dlock.backends.redis.client import parse_target

    spec = parse_target("rediss://ops:p%40ss@cache.example:6380/3/team/locks/ds%201")
    assert (spec.host, spec.port, spec.db, spec.key) == ("cache.example", 6380, 3, "team/locks/ds 1")
    assert (spec.username, spec.password, spec.tls) == ("ops", "p@ss", True)
    assert shown("rediss://ops:p%40ss@cache.example:6380/3/k") == "rediss://cache.example:6380/3/k"
    monkeypatch.setenv("DLOCK_REDIS_URL", "redis://:pw@10.0.0.5")
    spec = parse_target("redis:///0/k")
    assert (spec.host, spec.port, spec.password, spec.tls) == ("10.0.0.5", 6379, "pw", False)


@pytest.mark.parametrize("bad", ["redis://127.0.0.1:6379/locks/ds", "redis://127.0.0.1:6379/0/", "redis:///0/k"])
def test_a_target_without_database_key_or_server_is_a_usage_error(cli, bad):
    result = cli("status", bad, env={"DLOCK_REDIS_URL": ""})
    assert result.code == 2, result.err


def test_rediss_through_a_tls_server_with_its_ca_given_by_o_or_in_dlock_redis_url(redis_tls, key):
    cli = DlockRunner()
    target, ca = f"{redis_tls.url}/0/{key}", f"ssl_ca_certs={redis_tls.tls.ca}"
    assert cli("status", target, "-o", ca).code == 0
    taken = cli("acquire", target, "-o", ca, "--note", "over TLS")
    assert taken.code == 0, taken.err
    found, code = status(cli, target + f"?{ca}")  # redis-py's URL form
    assert code == 1 and found["locks"][0]["holder"]["note"] == "over TLS"
    env = {"DLOCK_REDIS_URL": f"{redis_tls.url}/?{ca}"}
    assert cli("status", f"redis:///0/{key}", env=env).code == 1
    assert cli("release", f"redis:///0/{key}", "--token", taken.out.strip(), env=env).code == 0
    assert cli("status", target, "-o", ca).code == 0


@pytest.mark.parametrize("trust, host, words", [
    ("system", "127.0.0.1", ("not trusted", "-o ssl_ca_certs=PATH")),
    ("other-ca", "127.0.0.1", ("not trusted", "-o ssl_ca_certs=PATH")),
    ("ca", "127.1", ("not for that host", "-o ssl_check_hostname=false")),  # the certificate names 127.0.0.1 and localhost
])
def test_an_untrusted_server_certificate_is_one_sentence_and_exit_4(redis_tls, key, trust, host, words):
    ca = {"system": None, "other-ca": redis_tls.tls.other_ca, "ca": redis_tls.tls.ca}[trust]
    options = ["-o", f"ssl_ca_certs={ca}"] if ca else []
    for verb in ("status", "acquire"):
        refused = DlockRunner()(verb, f"rediss://{host}:{redis_tls.port}/0/{key}", *options)
        assert refused.code == 4 and "Traceback" not in refused.err, refused.err
        assert "TLS certificate" in refused.err and all(word in refused.err for word in words), refused.err
        assert len(refused.err.strip().splitlines()) == 1


def test_plain_redis_to_a_tls_port_says_to_write_rediss(redis_tls, key):
    refused = DlockRunner()("status", f"redis://127.0.0.1:{redis_tls.port}/0/{key}")
    assert refused.code == 4 and "rediss://" in refused.err and "Traceback" not in refused.err, refused.err


@pytest.mark.parametrize("target, option, word", [
    ("redis://127.0.0.1:1/0/k", "ssl_ca_certs={ca}", "rediss://"),  # a TLS setting without TLS
    ("rediss://127.0.0.1:1/0/k", "endpoint_url=http://x", "takes no setting"),
    ("rediss://127.0.0.1:1/0/k", "ssl_ca_certs=/no/such/ca.pem", "not a file"),
    ("rediss://127.0.0.1:1/0/k", "ssl_cert_reqs=maybe", "ssl_cert_reqs"),
    ("redis://127.0.0.1:1/0/k?x=1", None, "%3F"),  # a query that is no setting: not silently cut off the key
])
def test_settings_a_redis_target_does_not_take_are_usage_errors(tmp_path, target, option, word):
    (tmp_path / "ca.pem").write_text("")
    options = ["-o", option.format(ca=tmp_path / "ca.pem")] if option else []
    refused = DlockRunner()("status", target, *options)
    assert refused.code == 2 and word in refused.err, refused.err


def test_a_redis_cluster_node_is_refused_in_one_sentence(redis_cluster_node, key):
    for target in (f"{redis_cluster_node.url}/0/{key}", f"{redis_cluster_node.url}/1/{key}"):
        refused = DlockRunner()("acquire", target)
        assert refused.code == 4 and "does not support Redis Cluster" in refused.err, refused.err
        assert "Traceback" not in refused.err and len(refused.err.strip().splitlines()) == 1


# -- interop ---------------------------------------------------------------------------

def test_redis_py_lock_holder_keeps_dlock_out_and_is_shown(cli, redis_server, target, key):
    holder = redis_py_holder(redis_server.url, key)
    try:
        assert cli("acquire", target).code == 1
        found, code = status(cli, target)
        assert code == 1 and found["locks"][0]["format"] == "redis-py"
        assert found["locks"][0]["holder"]["tool"] == "redis-py"
    finally:
        finish(holder)
    assert cli("acquire", target).code == 0


def test_dlock_holder_keeps_redis_py_out_and_its_release_lets_redis_py_in(cli, redis_server, target, key, r):
    token = cli("acquire", target).out.strip()
    assert not r.lock(key, timeout=5).acquire(blocking=False)
    assert cli("release", target, "--token", token).code == 0
    assert r.get(f"{key}:dlock") is None, "the holder JSON goes with the lock"
    assert r.lock(key, timeout=5).acquire(blocking=False)


@pytest.mark.parametrize("prefix, layout", [("lock:", "python-redis-lock"), ("redlock:", "pottery")])
def test_prefixed_libraries_keys_count_as_holding_the_name(cli, target, key, r, prefix, layout):
    r.set(prefix + key, uuid.uuid4().hex, px=60_000)
    found, code = status(cli, target)
    assert code == 1 and found["locks"][0]["format"] == layout and found["locks"][0]["path"] == prefix + key
    assert cli("acquire", target).code == 1
    assert cli("release", target, "--force", "--yes").code == 0
    assert r.get(prefix + key) is None
    if prefix == "lock:":
        assert r.lrange(f"lock-signal:{key}", 0, -1) == [b"1"], "python-redis-lock's waiters are woken"


def test_a_key_without_ttl_is_held_for_ever_with_a_warning_and_not_stale(cli, redis_server, target, key):
    holder = redis_py_holder(redis_server.url, key, "none")
    try:
        found, code = status(cli, target)
        assert code == 1 and found["locks"][0]["expires_at"] is None
        assert "never expires" in found["locks"][0]["warning"]
        assert "never expires" in cli("status", target).out
        assert cli("release", target, "--if-stale").code == 1
    finally:
        finish(holder)


# -- holding -----------------------------------------------------------------------------

def test_refresh_and_release_by_token_work_from_another_process_and_a_wrong_token_is_refused(cli, target, r, key):
    token = cli("acquire", target, "--ttl", "5").out.strip()
    assert cli("refresh", target, "--token", "0" * 32).code == 6
    assert cli("refresh", target, "--token", token, "--ttl", "60").code == 0
    assert r.pttl(key) > 50_000
    assert cli("release", target, "--token", "0" * 32).code == 6
    assert cli("release", target, "--token", token).code == 0


def test_a_waiter_is_woken_by_dlock_s_release_at_once_not_by_its_next_poll(target):
    import threading

    import dlock

    lease = dlock.acquire(target)
    woke: list[float] = []
    waiter = threading.Thread(target=lambda: dlock.wait(target, timeout=20) and woke.append(time.monotonic()))
    waiter.start()
    time.sleep(3.0)  # the waiter's polling has backed off to 1 s pauses by now
    released = time.monotonic()
    lease.release()
    waiter.join(timeout=10)
    assert woke and woke[0] - released < 0.15, "woken by the release's PUBLISH, not a poll"


def answer_times(procs: list[subprocess.Popen], timeout: float) -> list[float]:  # type: ignore[type-arg]
    """When each process printed its first line (time.monotonic()): `acquire` its token,
    `wait --json` its verdict, both at once after waking (exiting takes longer, and more so
    on a loaded machine)."""
    import threading

    answered: dict[int, float] = {}

    def read(i: int, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
        if proc.stdout.readline():
            answered[i] = time.monotonic()

    readers = [threading.Thread(target=read, args=(i, proc), daemon=True) for i, proc in enumerate(procs)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=timeout)
    assert len(answered) == len(procs), "a waiter did not wake"
    return [answered[i] for i in range(len(procs))]


WAITING = {"wait": ("wait", "--json"), "acquire": ("acquire",)}


def free_after_the_waiter_looks(r, lock, how: str) -> float:  # type: ignore[no-untyped-def]
    """Free the key just after a waiter's poll (MONITOR shows its request naming the key): a
    waiter that only polls sleeps most of a pause (1 s by now) before it looks again. By
    redis-py's release, or by expiry (the TTL cut to 0.2 s); returns when the key went."""
    with r.monitor() as monitor:
        for request in monitor.listen():
            if lock.name in request["command"]:
                break
    time.sleep(0.05)  # its look is over
    now = time.monotonic()
    if how == "release":
        lock.release()
        return now
    r.pexpire(lock.name, 200)
    return now + 0.2


@pytest.mark.parametrize("verb, how", [("wait", "release"), ("acquire", "release"), ("wait", "expiry")])
def test_with_keyspace_notifications_a_waiter_wakes_at_once_when_a_redis_py_lock_goes(tmp_path, key, verb, how):
    import redis

    from servers.redis import _server

    with _server(tmp_path, "--notify-keyspace-events", "Kgx") as server, redis.Redis(port=server.port, socket_timeout=10) as r:
        lock = r.lock(key, timeout=60)
        assert lock.acquire(blocking=False)
        waiter = DlockRunner().popen(*WAITING[verb], f"{server.url}/0/{key}", "--timeout", "60")
        time.sleep(3.0)  # its polling pause has reached the 1 s cap
        gone = free_after_the_waiter_looks(r, lock, how)
        answered = answer_times([waiter], timeout=20)[0]
        assert waiter.wait(timeout=20) == 0
        assert answered - gone < 0.5, "woken by the keyspace notification (del, expired), not a poll"


@pytest.mark.parametrize("verb, how", [("wait", "release"), ("acquire", "expiry")])
def test_without_keyspace_notifications_a_waiter_still_wakes_by_polling(cli, target, r, key, verb, how):
    assert "K" not in r.config_get("notify-keyspace-events")["notify-keyspace-events"]
    lock = r.lock(key, timeout=60)
    assert lock.acquire(blocking=False)
    waiter = cli.popen(*WAITING[verb], target, "--timeout", "60")
    time.sleep(3.0)
    gone = free_after_the_waiter_looks(r, lock, how)
    answered = answer_times([waiter], timeout=20)[0]
    assert waiter.wait(timeout=20) == 0
    assert answered - gone < 5, "the polling pause is at most 1 s"


def test_acl_users_without_config_or_without_channels_still_wait(tmp_path, key):
    """No CONFIG (as on managed services): subscribed anyway, woken by the notification. No
    Pub/Sub channels at all: polling."""
    import redis

    from servers.redis import _server

    with _server(tmp_path, "--notify-keyspace-events", "Kgx") as server, redis.Redis(port=server.port, socket_timeout=10) as r:
        r.execute_command("ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "&*", "+@all", "-config")
        r.execute_command("ACL", "SETUSER", "nochannels", "on", ">pw", "~*", "+@all", "resetchannels")
        for user, bound in (("noconfig", 0.5), ("nochannels", 5)):
            lock = r.lock(key, timeout=60)
            assert lock.acquire(blocking=False)
            waiter = DlockRunner().popen("acquire", f"redis://{user}:pw@127.0.0.1:{server.port}/0/{key}", "--timeout", "60")
            time.sleep(3.0)
            gone = free_after_the_waiter_looks(r, lock, "release")
            answered = answer_times([waiter], timeout=20)[0]
            assert waiter.wait(timeout=20) == 0, waiter.stderr.read()
            assert answered - gone < bound, user
            r.delete(key, f"{key}:dlock")


def test_a_sigkilled_holder_s_lock_is_free_after_its_ttl(cli, target):
    holder = cli.popen("acquire", target, "--hold", "--ttl", "2")
    assert len(holder.stdout.readline().strip()) == 32
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=5)
    assert status(cli, target)[1] == 1
    started = time.monotonic()
    assert cli("wait", target, "--timeout", "10").code == 0
    assert time.monotonic() - started < 3.5


def test_run_exits_3_when_the_server_dies_under_it(redis_private, tmp_path, key):
    cli = DlockRunner()
    marker = tmp_path / "finished"
    runner = cli.popen("run", f"{redis_private.url}/0/{key}", "--ttl", "3", "--grace", "1", "--",
                       "sh", "-c", f"sleep 30; touch {marker}")
    time.sleep(1.0)
    assert runner.poll() is None
    redis_private.stop()
    assert runner.wait(timeout=20) == 3
    assert "lost" in runner.stderr.read()
    assert not marker.exists()


def test_eight_processes_under_dlock_run_on_redis_lose_no_update(cli, target, tmp_path):
    assert count_under_dlock_run(cli, target, tmp_path) == 40


def test_four_dlock_runs_and_four_redis_py_lock_holders_lose_no_update_on_one_counter(cli, redis_server, target, key, tmp_path):
    assert count_under_dlock_run(cli, target, tmp_path, redis_py_lock=(redis_server.url, key)) == 40


# -- failover with Sentinel (a primary, a replica, a sentinel of the test's own; ~2 s each) ---------

def wait_until(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_failover_a_lock_replicated_before_the_primary_dies_is_still_held_on_the_new_primary(
        cli, redis_sentinel_group, key):
    import redis

    import dlock

    group = redis_sentinel_group
    refused = cli("acquire", f"{group.replica.url}/0/{key}")
    assert refused.code == 4 and "read only replica" in refused.err, "dlock does not follow Sentinel"
    dlock.acquire(f"{group.primary.url}/0/{key}", ttl=30, note="before failover")
    with redis.Redis(port=group.replica.port) as replica:
        wait_until(lambda: replica.get(key) is not None, timeout=5)
    group.primary.kill()
    wait_until(group.promoted_replica, timeout=30)
    new_primary = f"{group.replica.url}/0/{key}"
    assert cli("acquire", new_primary).code == 1, "busy on the new primary"
    found, code = status(cli, new_primary)
    assert code == 1 and found["locks"][0]["holder"]["note"] == "before failover"


def test_failover_a_lock_the_replica_never_received_is_lost_and_a_second_acquire_succeeds(
        cli, redis_sentinel_group, key):
    import redis

    import dlock

    group = redis_sentinel_group
    assert group.replica.process is not None
    # A stopped replica's kernel would still buffer what the primary sends; the primary
    # dropping the link as well keeps the write in the primary's backlog only.
    group.replica.process.send_signal(signal.SIGSTOP)
    try:
        with redis.Redis(port=group.primary.port) as primary:
            assert primary.client_kill_filter(_type="replica") == 1
        dlock.acquire(f"{group.primary.url}/0/{key}", ttl=30)
        group.primary.kill()
    finally:
        group.replica.process.send_signal(signal.SIGCONT)
    wait_until(group.promoted_replica, timeout=30)
    second = cli("acquire", f"{group.replica.url}/0/{key}")
    assert second.code == 0, "the first holder's lock did not survive: two holders now"


# -- list and clean ------------------------------------------------------------------------

def test_list_finds_lock_keys_under_a_prefix_and_clean_removes_only_idle_keys_without_ttl(cli, redis_server, r):
    root = f"{redis_server.url}/0/fleet-{uuid.uuid4().hex[:6]}/"
    prefix = root.split("/0/", 1)[1]
    r.set(f"{prefix}cache", "not a lock")
    r.set(f"{prefix}forgotten", uuid.uuid4().hex)  # redis-py Lock(timeout=None) whose holder died
    r.set(f"lock:{prefix}theirs", uuid.uuid4().hex, ex=60)
    r.hset(f"{prefix}hash", "a", "b")
    assert cli("acquire", f"{root}mine").code == 0
    time.sleep(1.2)
    listed = cli("list", root, "--json")
    assert listed.code == 0, listed.err
    rows = [json.loads(line) for line in listed.out.splitlines()]
    assert [row["dataset"] for row in rows] == [f"{prefix}forgotten", f"{prefix}mine", f"lock:{prefix}theirs"]
    assert [row["format"] for row in rows] == ["redis-py", "dlock", "python-redis-lock"]
    time.sleep(1.2)  # listing read the keys: their idle time starts again
    cleaned = cli("clean", root, "--older-than", "1s", "--yes", "--json")
    assert cleaned.code == 0, cleaned.err
    outcomes = {row["dataset"]: row["action"] for row in map(json.loads, cleaned.out.splitlines())}
    assert outcomes == {f"{prefix}forgotten": "removed"}, "a key with a TTL goes by itself; never removed"
    assert r.get(f"{prefix}forgotten") is None and r.get(f"{prefix}mine") is not None
    assert r.get(f"{prefix}cache") == b"not a lock"


def test_status_of_a_key_pattern_is_a_usage_error(cli, redis_server):
    assert cli("status", f"{redis_server.url}/0/jobs/*").code == 2
