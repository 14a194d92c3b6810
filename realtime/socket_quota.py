"""How many websockets each user has open, across every realtime process: at most MAX_PER_USER.

With Redis (CHANNEL_REDIS_URL, the events' Redis) the count lives there, a sorted set per user
of socket ids scored by when each one's lease ends: an open socket renews its lease, so the
sockets of a process that died lapse on their own. Without Redis (local mode): this process.
"""

import time
import weakref

from django.conf import settings
from redis.asyncio import Redis

from realtime.fanout import redis_client

MAX_PER_USER = 20
LEASE_SECONDS = 60.0
RENEW_SECONDS = LEASE_SECONDS / 3

# Drop the lapsed, then take a place only if one is free: one step, so concurrent handshakes of
# one user cannot all see the same free place.
_CLAIM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisSocketQuota:
    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.claim_script = client.register_script(_CLAIM)

    def _key(self, username: str) -> str:
        return f"{self.prefix}:ws-sockets:{username}"

    async def claim(self, username: str, socket_id: str) -> bool:
        now = time.time()
        args = [now, now + LEASE_SECONDS, socket_id, MAX_PER_USER, int(LEASE_SECONDS) + 1]
        return bool(await self.claim_script(keys=[self._key(username)], args=args))

    async def renew(self, username: str, socket_id: str) -> None:
        key = self._key(username)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {socket_id: time.time() + LEASE_SECONDS})
            pipe.expire(key, int(LEASE_SECONDS) + 1)
            await pipe.execute()

    async def release(self, username: str, socket_id: str) -> None:
        await self.client.zrem(self._key(username), socket_id)


class LocalSocketQuota:
    """This process's sockets only: without Redis there is no other process to count with."""

    sockets: dict[str, set[str]] = {}

    async def claim(self, username: str, socket_id: str) -> bool:
        mine = self.sockets.setdefault(username, set())
        if len(mine) >= MAX_PER_USER:
            return False
        mine.add(socket_id)
        return True

    async def renew(self, username: str, socket_id: str) -> None:
        pass

    async def release(self, username: str, socket_id: str) -> None:
        self.sockets.get(username, set()).discard(socket_id)


def socket_quota() -> RedisSocketQuota | LocalSocketQuota:
    """The quota in the events' Redis, on this event loop's client of it; else this process's."""
    if not settings.CHANNEL_REDIS_URL:
        return LocalSocketQuota()
    client = redis_client(settings.CHANNEL_REDIS_URL)
    quota = _quotas.get(client)
    if quota is None or quota.prefix != settings.REDIS_PREFIX:
        quota = _quotas[client] = RedisSocketQuota(client, settings.REDIS_PREFIX)
    return quota


_quotas: "weakref.WeakKeyDictionary[Redis, RedisSocketQuota]" = weakref.WeakKeyDictionary()
