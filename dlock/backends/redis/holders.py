"""What a lock key says about who holds it: its value (the token), its expiry, how long
nobody touched it, and dlock's holder JSON beside it when dlock took it."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from typing import Any

import redis

from dlock.backends.redis.client import RedisClient
from dlock.backends.redis.recipe import fingerprint, layout_of, meta_key
from dlock.identity import fence_of, holder_from_payload, holder_payload, number
from dlock.model import Holder, LockInfo, State

NEVER_EXPIRES = ("the key has no TTL, so it never expires: a holder that died leaves it for good "
                 "(release it by force once you know its holder is gone)")


def holder_json(token: str, ttl: float, note: str) -> str:
    return json.dumps(holder_payload(token, ttl, note), separators=(",", ":"))


# What a token looks like: redis-py's uuid1().hex, pottery's and python-redis-lock's tokens.
TOKEN = re.compile(rb"^[A-Za-z0-9+/=_-]{16,64}$")


def describe(client: RedisClient, key: str, token_shaped: bool = False) -> LockInfo | None:
    """The key as a lock, or None when it does not exist (or, with `token_shaped`, when its
    value does not look like a lock token: a listing meets every kind of string key)."""
    # OBJECT IDLETIME and PTTL do not touch the key; GET does, so it comes last.
    idle, pttl, kind = client.call(lambda r: _pipelined(r, ("OBJECT", "IDLETIME", key), ("PTTL", key), ("TYPE", key)))
    if pttl == -2:
        return None
    if kind != b"string":
        return LockInfo(path=key, state=State.CORRUPT, format="redis",
                        reason=f"a Redis {kind.decode(errors='replace')} key, not a lock")
    value, meta = client.call(lambda r: _pipelined(r, ("GET", key), ("GET", meta_key(key))))
    if value is None or (token_shaped and not TOKEN.match(value)):  # gone since the first look, or no lock
        return None
    token = value.decode("utf-8", errors="replace")
    payload = _dlock_payload(meta, token)
    now = time.time()
    return LockInfo(
        path=key,
        state=State.HELD,
        format="dlock" if payload else layout_of(key).name,
        holder=_holder(key, token, payload),
        expires_at=now + pttl / 1000.0 if pttl >= 0 else None,
        written_at=number(payload.get("written")) if payload else None,
        # Idle time only judges a key that never expires (clean --older-than).
        age=float(idle) if pttl < 0 and idle is not None else None,
        ttl=number(payload.get("ttl")) if payload else None,
        warning=NEVER_EXPIRES if pttl < 0 else None,
        fingerprint=fingerprint(token),
        fence=fence_of(payload.get("fence")) if payload else None,
    )


def _pipelined(r: redis.Redis, *commands: tuple[str, ...]) -> list[Any]:
    """Several commands in one round trip, answered in order (not a transaction)."""
    pipe = r.pipeline(transaction=False)
    for command in commands:
        # redis-py leaves execute_command untyped.
        pipe.execute_command(*command)  # type: ignore[no-untyped-call]
    return list(pipe.execute())


def _holder(key: str, token: str, payload: dict[str, object] | None) -> Holder:
    if payload is not None:
        return holder_from_payload(payload, Holder())
    # Another library's token says nothing about its holder; its short form tells keys apart.
    return dataclasses.replace(Holder(), tool=layout_of(key).name, identifier=token[:12])


def _dlock_payload(meta: bytes | None, token: str) -> dict[str, object] | None:
    """dlock's holder JSON, if it belongs to this very token (a stale one is ignored)."""
    try:
        payload = json.loads(meta.decode("utf-8")) if meta else None
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(payload, dict) and payload.get("owner") == token and str(payload.get("tool", "")).startswith("dlock/"):
        return payload
    return None
