"""One Redis client, and so one connection pool, per Redis URL per process.

The list cache (common.infra.cache.store), the event push (common.infra.event_push), the limits
(common.infra.limits) and the workers' send rate (scheduled.send_rate) take their client here: a
process holds one pool per Redis (and, for the hit path in front of Django, one asyncio client per
event loop), not one per user.
The policy is the cache's, the strictest of them: 0.5 s to connect and to answer, no retries
behind the caller's back, so a frozen Redis costs a caller one timeout and it degrades its own way.

Every new connection (sync or async) reads the server's `run_id` (INFO server): new on each start
of Redis, it is what the list cache names its keys by (its generation), so a Redis restarted empty
or from an old snapshot is noticed on the first reconnect.
"""

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # redis is imported by the first client, not at every function's start
    from redis import asyncio as aioredis

TIMEOUT_SECONDS = 0.5


class SharedRedis:
    """The clients of one Redis URL: `client` for threads, `async_client()` for the event loop."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.run_id: str | None = None  # of the server the latest connection reached
        self.errors = (redis.RedisError, OSError)  # what any command may raise
        self.client = redis.Redis.from_url(url, redis_connect_func=self._on_connect, **_options())
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )

    def async_client(self) -> "aioredis.Redis":
        """The asyncio client of the running event loop (a client is bound to its loop)."""
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            from redis import asyncio as aioredis

            client = aioredis.Redis.from_url(
                self.url, redis_connect_func=self._on_connect_async, **_options(asynchronous=True)
            )
            self._async[loop] = client
        return client

    def _on_connect(self, connection) -> None:
        connection.on_connect()
        connection.send_command("INFO", "server")
        self.run_id = _run_id(connection.read_response())

    async def _on_connect_async(self, connection) -> None:
        await connection.on_connect()
        await connection.send_command("INFO", "server")
        self.run_id = _run_id(await connection.read_response())


_shared: dict[str, SharedRedis] = {}
_lock = threading.Lock()


def shared_redis(url: str) -> SharedRedis:
    """This process's clients of the Redis at `url`."""
    found = _shared.get(url)
    if found is None:
        with _lock:
            if (found := _shared.get(url)) is None:
                found = _shared[url] = SharedRedis(url)
    return found


def _options(asynchronous: bool = False) -> dict:
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    no_retry = (AsyncRetry if asynchronous else Retry)(NoBackoff(), 0)
    return {
        "socket_connect_timeout": TIMEOUT_SECONDS,
        "socket_timeout": TIMEOUT_SECONDS,
        "retry": no_retry,
    }


def _run_id(info: bytes) -> str:
    for line in info.decode().splitlines():
        if line.startswith("run_id:"):
            return line.removeprefix("run_id:").strip()
    from redis.exceptions import ResponseError

    raise ResponseError("INFO server has no run_id")
