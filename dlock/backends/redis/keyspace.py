"""Finding lock keys in a database (`dlock list`, `clean`): SCAN, never KEYS, which blocks
the server while it walks every key.

A redis-py lock key is a plain string whose value is a random token, so any string key
could be one: a key counts as a lock when its value looks like a token (16 to 64
characters of hex or base64, as redis-py's uuid1().hex, pottery's and python-redis-lock's
tokens are), or when it carries a prefixed library's name. Point `list` at the prefix
your locks live under.
"""

from __future__ import annotations

import re
from typing import Iterator

from dlock.backends.base import ProgressCallback
from dlock.backends.redis.client import RedisClient
from dlock.backends.redis.holders import describe
from dlock.backends.redis.recipe import CHANNEL_SUFFIX, FENCE_SUFFIX, FOREIGN, META_SUFFIX
from dlock.model import FleetLock, FleetReport, Kind

BATCH = 500  # keys asked for per SCAN call: small enough not to stall the server
GLOB = re.compile(r"[*?\[]")


def pattern_of(key: str) -> str:
    """A key pattern as given, or a plain prefix with "*" after it ("" means every key)."""
    return key if GLOB.search(key) else key + "*"


def patterns_of(key: str) -> list[str]:
    """The pattern, and the same under each prefixed library's namespace: python-redis-lock
    keeps the lock named jobs/a as lock:jobs/a."""
    pattern = pattern_of(key)
    return [pattern] + [layout.prefix + pattern for layout in FOREIGN if not pattern.startswith(layout.prefix)]


def scan(client: RedisClient, root: str, key: str, on_progress: ProgressCallback | None = None) -> FleetReport:
    report = FleetReport(root, Kind.REDIS, 0, [], [])
    for seen, name in enumerate(_string_keys(client, patterns_of(key)), 1):
        # Only a prefixed library's key is a lock whatever its value.
        prefixed = any(name.startswith(layout.prefix) for layout in FOREIGN)
        info = describe(client, name, token_shaped=not prefixed)
        if info is not None:
            report.datasets += 1
            report.locks.append(FleetLock(name, info))
        if on_progress is not None and seen % 100 == 0:
            on_progress(seen, len(report.locks))
    report.locks.sort(key=lambda entry: entry.dataset)
    return report


def _string_keys(client: RedisClient, patterns: list[str]) -> Iterator[str]:
    """Each string key matching any pattern, once (SCAN may return a key twice)."""
    seen: set[str] = set()
    for pattern in patterns:
        cursor = 0
        while True:
            cursor, names = client.call(lambda r: r.scan(cursor, match=pattern, count=BATCH, _type="string"))
            for raw in names:
                name = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
                if name not in seen and not name.endswith((META_SUFFIX, CHANNEL_SUFFIX, FENCE_SUFFIX)):
                    seen.add(name)
                    yield name
            if cursor == 0:
                break
