"""What a person sees on a real terminal: the real `dlock` under a pseudo-terminal of a given width."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from conftest import TESTS, DlockRunner, dlock_executable
from dlock import codec

SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour and bold: rich's own styling, not text from a store
CONTROL_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
INJECTED = "\x1b[2J\x1b]0;owned\x07"  # clear the screen, set the window title
SHOWN = "\\x1b[2J\\x1b]0;owned\\x07"


def on_terminal(*args: str, columns: int, cwd: Path | None = None, stderr_too: bool = False) -> str:
    """Run dlock with stdout (and with `stderr_too` stderr) on a pty `columns` wide and return
    what it wrote there."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(TERM="xterm-256color", PYTHONPATH=str(TESTS.parent))
    proc = subprocess.Popen([*dlock_executable(), *args], stdin=slave, stdout=slave,
                            stderr=slave if stderr_too else subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
    os.close(slave)
    try:
        return _read_until_closed(master, deadline=time.monotonic() + 60).decode()
    finally:
        os.close(master)
        proc.wait(timeout=10)


def _read_until_closed(master: int, deadline: float) -> bytes:
    chunks = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the pty
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def screen_lines(raw: str) -> list[str]:
    return [CONTROL_SEQUENCE.sub("", line).rstrip("\r") for line in raw.split("\n")]


def write_lock(dataset: Path, **fields: object) -> None:
    """A lock file as another dlock would write it, with whatever host, user and note it chose."""
    payload = {"owner": "0" * 32, "host": "elsewhere", "pid": 4242, "user": "ana", "created": time.time(),
               "written": time.time(), "ttl": 300.0, "note": "", "tool": "dlock/0.1.0", **fields}
    (dataset / "dataset_lock.lock").write_bytes(codec.encode(codec.LockRecord(codec.random_node_id(), time.time() + 300, payload=payload)))


# -- text from a store never drives the terminal ----------------------------------------------


@pytest.fixture
def hostile_lock(tmp_path: Path) -> Path:
    dataset = tmp_path / "ds"
    dataset.mkdir()
    write_lock(dataset, host="evil" + INJECTED, user="u\u202eresu", note="note" + INJECTED)
    return dataset


def test_control_characters_in_a_lock_are_shown_escaped_on_a_terminal(hostile_lock):
    raw = on_terminal("status", str(hostile_lock), columns=200)
    assert "\x1b" not in SGR.sub("", raw), repr(raw)
    assert "\x07" not in raw and "\u202e" not in raw
    assert "evil" + SHOWN in raw and "note" + SHOWN in raw and "u\\u202eresu" in raw


def test_control_characters_in_a_lock_are_shown_escaped_when_piped(hostile_lock, local_cli):
    result = local_cli("status", str(hostile_lock))
    assert result.code == 1
    assert "\x1b" not in result.out and "\x07" not in result.out
    assert "evil" + SHOWN in result.out and "note" + SHOWN in result.out


def test_control_characters_in_a_lock_are_shown_escaped_in_an_error(hostile_lock, local_cli):
    result = local_cli("acquire", str(hostile_lock))
    assert result.code == 1
    assert "\x1b" not in result.err and "\u202e" not in result.err
    assert "evil" + SHOWN in result.err, result.err


def test_json_keeps_the_text_exactly(hostile_lock, local_cli):
    document = json.loads(local_cli("status", str(hostile_lock), "--json").out)
    assert document["targets"][0]["locks"][0]["holder"]["note"] == "note" + INJECTED


# -- a narrow terminal still shows who holds what ------------------------------------------------

WIDTHS = [60, 80, 120]
LONG_NOTE = "nightly ingest of the image shards from the upstream bucket, ask the data team before breaking it"


def holder_name(cli: DlockRunner, target: Path) -> str:
    """user@host as the lock records it."""
    locks = json.loads(cli("status", str(target), "--json").out)["targets"][0]["locks"]
    holder = next(lock["holder"] for lock in locks if lock["state"] == "held")
    return f"{holder['user']}@{holder['host']}"


def assert_fits(lines: list[str], columns: int) -> None:
    from rich.cells import cell_len

    too_wide = [line for line in lines if cell_len(line) > columns]
    assert not too_wide, too_wide


@pytest.fixture
def short_root():
    """A root short enough that a dataset path fits on one line of a 60-column terminal."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="dl-", dir="/tmp"))
    yield root
    shutil.rmtree(root)


@pytest.mark.parametrize("columns", WIDTHS)
def test_status_on_a_narrow_terminal_shows_state_and_holder_in_full(local_cli, deeplake_dataset, columns):
    local_cli("acquire", str(deeplake_dataset), "--note", LONG_NOTE)
    holder = holder_name(local_cli, deeplake_dataset)
    lines = screen_lines(on_terminal("status", str(deeplake_dataset), columns=columns))
    below_title = lines[1:]
    assert any(re.search(r"\bheld\b", line) for line in below_title), lines
    assert any(re.search(r"\bstale\b", line) for line in below_title), lines
    assert any(holder in line for line in below_title), lines
    assert_fits(lines, columns)


@pytest.mark.parametrize("columns", WIDTHS)
def test_list_on_a_narrow_terminal_shows_each_full_dataset_name_state_and_holder(local_cli, short_root, columns):
    names = [str(short_root / f"images-train-2024-part-{i}") for i in range(1, 4)]
    for name in names:
        Path(name).mkdir()
        (Path(name) / "dataset_meta.json").write_text("{}")
        local_cli("acquire", name, "--note", LONG_NOTE)
    holder = holder_name(local_cli, Path(names[0]))
    lines = screen_lines(on_terminal("list", str(short_root), columns=columns))
    for name in names:
        assert any(name in line for line in lines), (name, lines)
    assert sum(bool(re.search(r"\bheld\b", line)) for line in lines) >= 3, lines
    assert sum(holder in line for line in lines) >= 3, lines
    assert_fits(lines, columns)


# -- the fleet scan's progress bar ---------------------------------------------------------------

BAR = "\u2501"  # the heavy horizontal line rich draws a bar with


@pytest.fixture
def fleet(local_cli, short_root) -> Path:
    """30 datasets, each in its own folder under the root, one of them locked."""
    for i in range(30):
        (short_root / f"team-{i}" / "images").mkdir(parents=True)
        (short_root / f"team-{i}" / "images" / "dataset_meta.json").write_text("{}")
    assert local_cli("acquire", str(short_root / "team-7" / "images")).code == 0
    return short_root


def bar_frames(raw: str) -> list[str]:
    """Each state of the live line as drawn (rich redraws it in place after a carriage return)."""
    frames = [CONTROL_SEQUENCE.sub("", frame) for frame in re.split(r"[\r\n]", raw)]
    return [frame.rstrip() for frame in frames if BAR in frame]


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("verb", [["list"], ["clean", "--dry-run"]])
def test_a_scan_on_a_terminal_shows_a_bar_over_the_folders_then_the_lock_files(fleet, verb, columns):
    raw = on_terminal(*verb, str(fleet), columns=columns, stderr_too=True)
    frames = bar_frames(raw)
    assert any(re.search(r"\b\d+/30 folders, \d+ lock files?$", frame) for frame in frames), frames
    assert any(frame.endswith("1/1 lock files read") for frame in frames), frames
    assert all(frame.startswith("scanning ") for frame in frames), frames
    assert_fits(frames, columns)
    assert "30 datasets, 1 lock: 1 held" in raw or "would remove" in raw or "Nothing to remove" in raw, raw


@pytest.mark.parametrize("verb", [["list"], ["clean", "--dry-run"], ["list", "--format", "prometheus"]])
def test_a_scan_piped_shows_nothing_of_the_bar(fleet, local_cli, verb):
    result = local_cli(*verb, str(fleet))
    assert result.code == 0, result.err
    for stream in (result.out, result.err):
        assert BAR not in stream and "\x1b" not in stream and "folders" not in stream, stream


@pytest.mark.parametrize("store", ["local", "memory"])  # a walk folder by folder; a store that lists whole subtrees
def test_the_scan_reports_folders_done_of_a_known_total_then_lock_files_read(fleet, store):
    import fsspec

    from dlock import api
    from dlock.model import State

    root = str(fleet)
    if store == "memory":
        memory = fsspec.filesystem("memory")
        root = f"memory://{fleet.name}"
        for path in fleet.rglob("*"):
            if path.is_file():
                memory.pipe(f"/{fleet.name}/{path.relative_to(fleet)}", path.read_bytes())
    calls: list[tuple[int, int, int | None, str]] = []
    report = api.scan_locks(root, on_progress=lambda done, found, total=None, unit="": calls.append((done, found, total, unit)))
    folders = [call for call in calls if call[3] == "folders"]
    reads = [call for call in calls if call[3] == "lock files"]
    assert calls == folders + reads
    assert {total for _, _, total, _ in folders} == {30} and folders[-1][0] == 30
    assert [done for done, *_ in folders] == sorted(done for done, *_ in folders)  # a bar never goes back
    assert reads == [(1, 1, 1, "lock files")] and report.count(State.HELD) == 1


def test_metrics_on_a_terminal_show_a_hostile_name_escaped_and_piped_keep_it_exact(local_cli, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    dataset = tmp_path / ("evil" + INJECTED)
    dataset.mkdir()
    write_lock(dataset)
    raw = on_terminal("list", str(tmp_path), "--format", "prometheus", columns=120)
    assert "\x1b" not in raw and "\x07" not in raw, repr(raw)
    assert "evil" + SHOWN in raw
    piped = local_cli("list", str(tmp_path), "--format", "prometheus").out
    held = next(family for family in text_string_to_metric_families(piped) if family.name == "dlock_lock_held_seconds")
    assert [sample.labels["dataset"] for sample in held.samples] == [str(dataset)]
