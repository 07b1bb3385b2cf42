"""The lock-file codec against files Deep Lake 3.9.52 wrote itself, and against any bytes."""

from __future__ import annotations

import math
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from dlock import codec
from dlock.errors import CorruptLock

DEEPLAKE_FILES = sorted(p for p in FIXTURES.glob("*.lock"))


@pytest.mark.parametrize("path", DEEPLAKE_FILES, ids=lambda p: p.name)
def test_deeplake_39_files_decode_to_node_expiry_and_pid(path):
    data = path.read_bytes()
    record = codec.decode(data)
    assert len(data) == 18
    assert record.format == "deeplake-3.9"
    assert record.node_id == int.from_bytes(data[:6], "little")
    assert record.time == struct.unpack("<d", data[6:14])[0]
    assert record.pid == int.from_bytes(data[14:18], "little") and record.pid > 0
    assert record.time_is_expiry
    assert codec.encode(record) == data  # re-encoding keeps Deep Lake's bytes


def test_node_id_is_shown_as_a_mac_address():
    assert codec.format_node_id(0x02FC00000001) == "02:fc:00:00:00:01"


def test_fourteen_byte_file_is_legacy_write_time():
    data = (123).to_bytes(6, "little") + struct.pack("<d", 1_700_000_000.0)
    record = codec.decode(data)
    assert record.format == "deeplake-legacy" and not record.time_is_expiry
    assert record.pid is None and record.payload is None


def test_dlock_tag_round_trips_with_json():
    record = codec.LockRecord(codec.random_node_id(), 1e9, payload={"owner": "abc", "note": "ünï"})
    decoded = codec.decode(codec.encode(record))
    assert decoded.payload == {"owner": "abc", "note": "ünï"}
    assert decoded.owner_token == "abc" and decoded.format == "dlock"


def test_dlock_node_id_never_looks_like_this_machine():
    # The multicast bit keeps a Deep Lake process on this host from taking it for its own.
    for _ in range(100):
        node = codec.random_node_id()
        assert node & codec.MULTICAST_BIT and node != uuid.getnode()
        assert node < 2**48


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "shorter than the 14 bytes"),
        (b"\x01" * 13, "shorter than the 14 bytes"),
        (b"\x00" * 6 + struct.pack("<d", math.nan), "not a time"),
        (b"\x00" * 6 + struct.pack("<d", math.inf), "not a time"),
        (b"\x00" * 6 + struct.pack("<d", -5.0), "not a time"),
        (b"\x00" * 6 + struct.pack("<d", 1e9) + b"DLCK\x01{not json", "not valid JSON"),
        (b"\x00" * 6 + struct.pack("<d", 1e9) + b"DLCK\x01[1,2]", "not an object"),
        (b"\x00" * 6 + struct.pack("<d", 1e9) + b"DLCK\x07{}", "tag version"),
        (b"\x00" * 6 + struct.pack("<d", 1e9) + b"DLCK\x01\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_files_are_corrupt_with_a_reason(data, reason):
    with pytest.raises(CorruptLock, match=reason):
        codec.decode(data)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=64) | st.binary(min_size=14, max_size=14).map(lambda b: b + b"DLCK\x01") | st.builds(
    lambda head, body: head + b"DLCK\x01" + body, st.binary(min_size=14, max_size=14), st.binary(max_size=40)
))
def test_no_byte_string_crashes_the_reader(data):
    try:
        record = codec.decode(data)
    except CorruptLock:
        return
    assert math.isfinite(record.time) and record.time >= 0
    assert 0 <= record.node_id < 2**48
