"""Redis lock keys in redis-py's layout: the connection (client), the layouts and Lua
scripts (recipe), who a key says holds it (holders), finding lock keys (keyspace), waking
waiters (wakeup), holding (lease) and the target (backend)."""

from dlock.backends.redis.backend import RedisBackend, open_backend

__all__ = ["RedisBackend", "open_backend"]
