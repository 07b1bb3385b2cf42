"""The lock-file format Deep Lake 3 uses, and dlock's tag inside it. No I/O here.

| bytes | content |
| 0-5   | node id, unsigned 48-bit little-endian (Deep Lake writes uuid.getnode()) |
| 6-13  | a time, float64 little-endian, seconds since the epoch |
| 14-   | tag: Deep Lake 3.9 writes its pid (4 bytes LE); dlock writes b"DLCK", 0x01, JSON |

Deep Lake 3.9 stores the expiry (write time + 300 s); older 3.x releases wrote a
14-byte file holding the write time and treated it as valid for 300 s.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Any

from dlock.errors import CorruptLock

MAGIC = b"DLCK"
TAG_VERSION = 1
HEADER = struct.Struct("<6sd")  # node id bytes, time
DEEPLAKE_TTL = 300.0  # Deep Lake's validity of a lock, both generations
MULTICAST_BIT = 1 << 40  # RFC 4122: a node id that is not a MAC address


@dataclasses.dataclass(frozen=True)
class LockRecord:
    node_id: int
    time: float
    pid: int | None = None  # Deep Lake 3.9's tag
    payload: dict[str, Any] | None = None  # dlock's tag
    extra: bytes = b""  # a tag nobody here knows

    @property
    def format(self) -> str:
        if self.payload is not None:
            return "dlock"
        if self.pid is not None:
            return "deeplake-3.9"
        if not self.extra:
            return "deeplake-legacy"
        return "unknown-tag"

    @property
    def time_is_expiry(self) -> bool:
        """Every form but the 14-byte legacy file stores the expiry."""
        return self.format != "deeplake-legacy"

    @property
    def owner_token(self) -> str | None:
        owner = (self.payload or {}).get("owner")
        return owner if isinstance(owner, str) else None


def random_node_id() -> int:
    """A node id no Deep Lake process will take for its own machine's."""
    from dlock.identity import random_bytes

    return int.from_bytes(random_bytes(6), "big") | MULTICAST_BIT


def format_node_id(node_id: int) -> str:
    return ":".join(f"{node_id:012x}"[i : i + 2] for i in range(0, 12, 2))


def encode(record: LockRecord) -> bytes:
    head = HEADER.pack(record.node_id.to_bytes(6, "little"), record.time)
    if record.payload is not None:
        import json  # here, not at start-up: a free dataset's status never needs it

        body = json.dumps(record.payload, separators=(",", ":"), sort_keys=True).encode()
        return head + MAGIC + bytes([TAG_VERSION]) + body
    if record.pid is not None:
        return head + (record.pid & 0xFFFFFFFF).to_bytes(4, "little")
    return head + record.extra


def decode(data: bytes) -> LockRecord:
    """Parse a lock file; anything that is not a lock raises CorruptLock with the reason."""
    if len(data) < HEADER.size:
        raise CorruptLock(f"shorter than the 14 bytes of a lock file (it has {len(data)})")
    node_bytes, time = HEADER.unpack_from(data)
    if not math.isfinite(time) or time < 0:
        raise CorruptLock(f"its time field is {time!r}, not a time")
    node_id = int.from_bytes(node_bytes, "little")
    tag = data[HEADER.size :]
    if tag.startswith(MAGIC):
        return LockRecord(node_id, time, payload=_decode_payload(tag[len(MAGIC) :]))
    if len(tag) == 4:
        return LockRecord(node_id, time, pid=int.from_bytes(tag, "little"))
    return LockRecord(node_id, time, extra=tag)


def _decode_payload(tag: bytes) -> dict[str, Any]:
    if not tag or tag[0] != TAG_VERSION:
        version = tag[0] if tag else None
        raise CorruptLock(f"dlock tag version {version!r} is not one this dlock reads")
    import json

    try:
        payload = json.loads(tag[1:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptLock(f"its dlock tag is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise CorruptLock("its dlock tag is JSON but not an object")
    return payload
