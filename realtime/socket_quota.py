"""How many websockets each user has open, across every realtime process: at most MAX_PER_USER.

With Redis (CHANNEL_REDIS_URL, the events' Redis) the count lives there, a sorted set per user
of socket ids scored by when each one's lease ends: a process renews the leases of all its open
sockets together, in one round trip every RENEW_SECONDS (not one per socket: a thousand sockets
connected at once would renew at once), so the sockets of a process that died lapse on their own.
Without Redis (local mode): this process.
"""

import asyncio
import logging
import time
import weakref
from collections import defaultdict

from django.conf import settings
from redis.asyncio import Redis
from redis.exceptions import RedisError

from realtime.fanout import redis_client

logger = logging.getLogger(__name__)

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
        self.held: defaultdict[str, set[str]] = defaultdict(set)  # username -> its socket ids
        self.renewer: asyncio.Task | None = None

    def _key(self, username: str) -> str:
        return f"{self.prefix}:ws-sockets:{username}"

    async def claim(self, username: str, socket_id: str) -> bool:
        now = time.time()
        args = [now, now + LEASE_SECONDS, socket_id, MAX_PER_USER, int(LEASE_SECONDS) + 1]
        if not await self.claim_script(keys=[self._key(username)], args=args):
            return False
        self.held[username].add(socket_id)
        if self.renewer is None or self.renewer.done():
            self.renewer = asyncio.create_task(self._renew_forever())
        return True

    async def renew(self) -> None:
        """Every held socket's lease, from now, in one round trip."""
        until = time.time() + LEASE_SECONDS
        async with self.client.pipeline(transaction=False) as pipe:
            for username, sockets in list(self.held.items()):
                pipe.zadd(self._key(username), dict.fromkeys(sockets, until), xx=True)
                pipe.expire(self._key(username), int(LEASE_SECONDS) + 1)
            await pipe.execute()

    async def _renew_forever(self) -> None:
        while self.held:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                async with asyncio.timeout(RENEW_SECONDS / 2):
                    await self.renew()
            except (OSError, TimeoutError, RedisError) as exc:  # again at the next round
                logger.warning("websocket places not renewed, Redis is unavailable: %s", exc)

    async def release(self, username: str, socket_id: str) -> None:
        sockets = self.held.get(username, set())
        sockets.discard(socket_id)
        if not sockets:
            self.held.pop(username, None)
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
