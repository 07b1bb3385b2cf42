"""What a contender's node says about who holds or waits: its data and its stat.

dlock writes the same holder JSON into the node as into a lock file; a node written by
another program (kazoo's recipes store their `identifier`) is shown as that identifier.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING

from dlock.backends.zookeeper.client import ZkClient
from dlock.backends.zookeeper.recipe import Contender, holds
from dlock.identity import holder_from_payload, holder_payload
from dlock.model import Holder, LockInfo, State

if TYPE_CHECKING:
    from kazoo.protocol.states import ZnodeStat


def node_data(token: str, ttl: float, note: str) -> bytes:
    return json.dumps(holder_payload(token, ttl, note), separators=(",", ":")).encode()


def describe(client: ZkClient, lock_path: str, contender: Contender, ordered: list[Contender]) -> LockInfo | None:
    """The contender as a held (or, behind a blocker, waiting) lock; None if it just left."""
    path = f"{lock_path}/{contender.name}"
    found = client.get(path)
    if found is None:  # released while we looked
        return None
    data, stat = found
    created = stat.ctime / 1000.0
    waiting = not holds(contender, ordered)
    return LockInfo(
        path=path,
        state=State.HELD,
        format="zookeeper",
        holder=holder_of(contender, data, stat),
        written_at=created,
        age=time.time() - created,
        waiting=waiting,
        # czxid names this node among all that ever had its path; version changes with its data
        fingerprint=f"{stat.czxid:x}.{stat.version}",
        fence=None if waiting else stat.czxid,
    )


def describe_all(client: ZkClient, lock_path: str, ordered: list[Contender]) -> list[LockInfo]:
    return [info for contender in ordered if (info := describe(client, lock_path, contender, ordered))]


def holder_of(contender: Contender, data: bytes, stat: ZnodeStat) -> Holder:
    base = Holder(mode=contender.mode, node=contender.name, session_id=f"0x{stat.ephemeralOwner:x}",
                  created=stat.ctime / 1000.0)
    payload = _dlock_payload(data)
    if payload is None:
        return dataclasses.replace(base, identifier=data.decode("utf-8", errors="replace") if data else None)
    return holder_from_payload(payload, base)


def _dlock_payload(data: bytes) -> dict[str, object] | None:
    try:
        payload = json.loads(data.decode("utf-8")) if data else None
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(payload, dict) and str(payload.get("tool", "")).startswith("dlock/"):
        return payload
    return None
