"""Rate limits, counted in Redis: a sliding log per key, each decision one atomic Lua script.

A limit is `limit` entries in any `window` seconds. `acquire` takes one place in every log it
names at once, or none when any of them is full, and then says how long until the first place
frees (the Retry-After); `release` gives a place back (a login that turned out right is not a
failure). The script runs whole inside Redis, so concurrent requests can never take more places
than there are: checking and counting are one step, not two.

The clock is this module's `clock` (seconds, wall time), passed to the script: tests move it.
The logs live in the list cache's Redis (CACHE_REDIS_URL) under `{REDIS_PREFIX}:limit:`, through
the process's one client of it (common.infra.redis_clients: 0.5 s timeouts, no retries).
Without Redis (local mode) they are kept in the process. Redis failing raises LimitsDown: each
caller chooses which way it degrades.
"""

import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from common.infra.redis_clients import shared_redis

clock = time.time  # replaced by tests

# KEYS: the logs. ARGV: now (ms), the place's member, then per key its limit and window (ms).
# Returns 0 when a place was taken in every log, else the milliseconds until one frees in all.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local frees = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(frees[2]) + window - now)
  end
end
if wait > 0 then
  return wait
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return 0
"""


class LimitsDown(Exception):
    """The limits' Redis did not answer: nothing was counted."""


@dataclass(frozen=True)
class Limit:
    key: str  # a name without the prefix, e.g. `write:42`
    limit: int
    window: float  # seconds


@dataclass(frozen=True)
class Place:
    """A place taken in some logs (`member`), or a refusal (`retry_after` seconds)."""

    keys: tuple[str, ...]
    member: str
    retry_after: int = 0

    @property
    def refused(self) -> bool:
        return self.retry_after > 0


class RedisLimits:
    def __init__(self, url: str, prefix: str) -> None:
        shared = shared_redis(url)  # made at first use, not at a function's start (cold_start)
        self.errors, self.client, self.prefix = shared.errors, shared.client, prefix
        self._acquire = self.client.register_script(_ACQUIRE)

    def key(self, name: str) -> str:
        return f"{self.prefix}:limit:{name}"

    def acquire(self, limits: Sequence[Limit]) -> Place:
        member = uuid.uuid4().hex
        keys = tuple(self.key(limit.key) for limit in limits)
        args: list[int | str] = [int(clock() * 1000), member]
        for limit in limits:
            args += [limit.limit, int(limit.window * 1000)]
        try:
            wait_ms = int(self._acquire(keys=keys, args=args))
        except self.errors as exc:
            raise LimitsDown from exc
        return Place(keys, member, _seconds(wait_ms))

    def release(self, place: Place) -> None:
        try:
            with self.client.pipeline(transaction=True) as pipeline:
                for key in place.keys:
                    pipeline.zrem(key, place.member)
                pipeline.execute()
        except self.errors as exc:
            raise LimitsDown from exc


class MemoryLimits:
    """The same logs inside the process (local mode without Redis)."""

    def __init__(self) -> None:
        self._logs: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, limits: Sequence[Limit]) -> Place:
        member, now = uuid.uuid4().hex, clock()
        with self._lock:
            wait = 0.0
            for limit in limits:
                log = self._logs.setdefault(limit.key, {})
                for name, at in list(log.items()):
                    if at <= now - limit.window:
                        del log[name]
                if len(log) >= limit.limit:
                    frees = sorted(log.values())[len(log) - limit.limit]
                    wait = max(wait, frees + limit.window - now)
            keys = tuple(limit.key for limit in limits)
            if wait > 0:
                return Place(keys, member, _seconds(wait * 1000))
            for limit in limits:
                self._logs[limit.key][member] = now
            return Place(keys, member)

    def release(self, place: Place) -> None:
        with self._lock:
            for key in place.keys:
                self._logs.get(key, {}).pop(place.member, None)


def _seconds(wait_ms: float) -> int:
    return max(1, math.ceil(wait_ms / 1000)) if wait_ms > 0 else 0


_memory = MemoryLimits()
_redis: dict[tuple[str, str], RedisLimits] = {}


def limits() -> RedisLimits | MemoryLimits:
    """The limits' store: the list cache's Redis, or the process's memory without one."""
    url = settings.CACHE_REDIS_URL
    if not url:
        return _memory
    identity = (url, settings.REDIS_PREFIX)
    if identity not in _redis:
        _redis[identity] = RedisLimits(url, settings.REDIS_PREFIX)
    return _redis[identity]
