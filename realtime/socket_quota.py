"""How many websockets each user has open, across every realtime process: at most MAX_PER_USER.

With the Redis channel layer the count lives in that Redis, a sorted set per user of socket ids
scored by when each one's lease ends: an open socket renews its lease, so the sockets of a
process that died lapse on their own. Without Redis (local mode) there is only this process.
"""

import asyncio
import time
import weakref

from channels.layers import DEFAULT_CHANNEL_LAYER
from channels_redis.utils import create_pool, decode_hosts
from django.conf import settings
from redis.asyncio import Redis

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
    """This process's sockets only: the in-memory channel layer reaches no other process."""

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


# A redis.asyncio pool belongs to the event loop it first ran on: one per loop (and address).
_quotas: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def socket_quota() -> RedisSocketQuota | LocalSocketQuota:
    """The quota of the configured channel layer: in its Redis, else this process's."""
    layer = settings.CHANNEL_LAYERS[DEFAULT_CHANNEL_LAYER]
    if not layer["BACKEND"].startswith("channels_redis."):
        return LocalSocketQuota()
    config = layer.get("CONFIG", {})
    host = decode_hosts(config.get("hosts"))[0]
    prefix = config.get("prefix", "asgi")
    per_loop = _quotas.setdefault(asyncio.get_running_loop(), {})
    key = (repr(host), prefix)
    if key not in per_loop:
        per_loop[key] = RedisSocketQuota(Redis(connection_pool=create_pool(host)), prefix)
    return per_loop[key]
