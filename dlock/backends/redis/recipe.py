"""The lock layouts dlock speaks on Redis, as data, and the Lua scripts that change a lock.

redis-py's `redis.lock.Lock` is the layout dlock writes: the key is the lock's name and
its value the holder's random token, set with `SET key token NX PX ms`; release and
extend compare the token first, in a Lua script. So dlock and redis-py clients exclude
each other both ways. dlock keeps who holds the lock beside it, in `KEY:dlock` (the holder
JSON of a lock file) with the same expiry, so the lock key stays exactly redis-py's.

python-redis-lock (`lock:<name>`, its waiters BLPOP `lock-signal:<name>`) and pottery's
Redlock (`redlock:<name>`) are the same shape under a prefix: status recognises them and a
forced release wakes python-redis-lock's waiters as its own unlock does.
"""

from __future__ import annotations

import dataclasses
import hashlib

META_SUFFIX = ":dlock"  # the holder JSON beside a lock dlock took
FENCE_SUFFIX = ":dlock-fence"  # the lock's fencing counter: INCR by each dlock acquisition, never expires
CHANNEL_SUFFIX = ":dlock-released"  # published on every release dlock makes: waiters wake


@dataclasses.dataclass(frozen=True)
class Layout:
    name: str  # LockInfo.format and the holder's tool
    prefix: str
    signal_prefix: str | None = None  # a list the library's waiters block on

    def lock_name(self, key: str) -> str:
        """The name the library was given for this key (what a dlock target names)."""
        return key[len(self.prefix):]

    def signal(self, key: str) -> str | None:
        """The wake-up list for a key of this layout, if its library has one."""
        if self.signal_prefix is None:
            return None
        return self.signal_prefix + self.lock_name(key)


REDIS_PY = Layout("redis-py", "")
PYTHON_REDIS_LOCK = Layout("python-redis-lock", "lock:", "lock-signal:")
POTTERY = Layout("pottery", "redlock:")
FOREIGN = (PYTHON_REDIS_LOCK, POTTERY)  # also looked at when the key itself is absent


def layout_of(key: str) -> Layout:
    """Judged by the key's name: the prefixes are the libraries' own conventions."""
    return next((layout for layout in FOREIGN if key.startswith(layout.prefix)), REDIS_PY)


def candidates(key: str) -> list[str]:
    """The keys that hold the lock named `key`: itself, then the prefixed libraries' keys."""
    return [key] + [layout.prefix + key for layout in FOREIGN]


# KEYS: lock, meta, fence counter, the prefixed keys of the same name. ARGV: token, ms,
# holder JSON (an object). SET NX PX as redis-py's acquire; a python-redis-lock or pottery
# holder of the same name makes us wait too, as status reports it held. Returns the
# acquisition's fence (the counter raised in the same script, so in the same order as the
# acquisitions), or 0 when the lock is held.
ACQUIRE = """
for i = 4, #KEYS do
    if redis.call('exists', KEYS[i]) == 1 then return 0 end
end
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local fence = redis.call('incr', KEYS[3])
redis.call('set', KEYS[2], '{"fence":' .. fence .. ',' .. string.sub(ARGV[3], 2), 'PX', ARGV[2])
return fence
"""

# KEYS: lock, meta. ARGV: token, ms. As redis-py's extend with replace_ttl: ours only.
REFRESH = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('pexpire', KEYS[1], ARGV[2])
redis.call('pexpire', KEYS[2], ARGV[2])
return 1
"""

# KEYS: lock, meta, signal list or "". ARGV: SHA-1 of the token, channel, require no TTL
# ("1"/"0"). Release by token and forced removal alike: only the lock as it was judged goes,
# and status shows the token's SHA-1, never the token that would release it.
# python-redis-lock's unlock pushes its signal list (expiring in 1 s) to wake a waiter.
DELETE = """
local token = redis.call('get', KEYS[1])
if not token or redis.sha1hex(token) ~= ARGV[1] then return 0 end
if ARGV[3] == '1' and redis.call('pttl', KEYS[1]) ~= -1 then return 0 end
redis.call('del', KEYS[1], KEYS[2])
if KEYS[3] ~= '' then
    redis.call('del', KEYS[3])
    redis.call('lpush', KEYS[3], 1)
    redis.call('pexpire', KEYS[3], 1000)
end
redis.call('publish', ARGV[2], KEYS[1])
return 1
"""


def fingerprint(token: str) -> str:
    """What identifies a lock without giving away the token that releases it."""
    return hashlib.sha1(token.encode()).hexdigest()


def meta_key(key: str) -> str:
    return key + META_SUFFIX


def fence_key(key: str) -> str:
    return key + FENCE_SUFFIX


def channel(key: str) -> str:
    return key + CHANNEL_SUFFIX
