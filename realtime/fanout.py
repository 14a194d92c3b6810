"""The fan-out: one subscription per process to every project's events, handed to the sockets.

A hub per event loop holds ONE Redis pub/sub subscription (redis.asyncio, public API) to the
channels common.event_push publishes on, and a dict project -> the sockets that want it. Each
message is parsed once per process (for its seq); a delivery is a set lookup and, per socket,
its own `offer`, which only queues the text for that socket's task. Sockets join per project;
"every project" is an explicit, separate set, for sockets that named none (while memberships do
not exist, that is every project there is). Without Redis (the local mode) the events come from
this process's writes instead (common.event_push.listen_in_process).

Best effort, as the push is: a message lost while Redis is away shows as a gap in `seq`, which
each socket fills from the event log.
"""

import asyncio
import json
import logging
import weakref
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from django.conf import settings
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from common.event_push import event_channel_pattern, listen_in_process, project_of_channel

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)  # waits between attempts while Redis is away


class Listener(Protocol):
    def offer(self, project_id: int, seq: int, text: str) -> None:
        """Take one live event (must not block: queue it)."""


class Hub:
    """Which sockets of this process want which project's events."""

    def __init__(self, source: "RedisSource | LocalSource") -> None:
        self.source = source
        self.by_project: defaultdict[int, set[Listener]] = defaultdict(set)
        self.everywhere: set[Listener] = set()
        source.hub = self

    async def join(self, listener: Listener, projects: Iterable[int] | None) -> None:
        """Deliver the events of `projects` (None: of every project) to `listener`.

        Returns once the subscription is live, so events committed after it reach the listener;
        raises ConnectionError while the source cannot subscribe.
        """
        await self.source.ready()
        if projects is None:
            self.everywhere.add(listener)
        for project_id in projects or ():
            self.by_project[project_id].add(listener)

    def leave(self, listener: Listener, projects: Iterable[int] | None = None) -> None:
        """Stop delivering `projects` (None: everything) to `listener`."""
        if projects is None:
            self.everywhere.discard(listener)
            projects = [pk for pk, listeners in self.by_project.items() if listener in listeners]
        for project_id in projects:
            listeners = self.by_project.get(project_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self.by_project[project_id]

    def deliver(self, project_id: int, text: str) -> None:
        seq = json.loads(text)["seq"]
        for listener in (*self.by_project.get(project_id, ()), *self.everywhere):
            listener.offer(project_id, seq, text)


class RedisSource:
    """Every project's channel, through one pattern subscription, kept up while the loop runs."""

    hub: Hub

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.subscribed = asyncio.Event()
        self.attempted = asyncio.Event()  # set after each attempt, subscribed or not
        self.error: Exception | None = None
        self.task: asyncio.Task | None = None

    async def ready(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._listen_forever())
        if not self.subscribed.is_set():
            await self.attempted.wait()
        if not self.subscribed.is_set():
            raise ConnectionError(f"event subscription: {self.error}")

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                self.error = exc
                self.subscribed.clear()
                self.attempted.set()
                wait = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                logger.warning("event subscription lost, again in %ss: %s", wait, exc)
                await asyncio.sleep(wait)
                self.attempted.clear()

    async def _listen(self) -> None:
        async with self.client.pubsub() as pubsub:
            await pubsub.psubscribe(event_channel_pattern())
            async for message in pubsub.listen():
                if message["type"] == "pmessage":
                    channel = message["channel"].decode()
                    self.hub.deliver(project_of_channel(channel), message["data"].decode())
                elif message["type"] == "psubscribe":  # confirmed: publishes from now on reach us
                    self.subscribed.set()
                    self.attempted.set()


class LocalSource:
    """The local mode: this process's own writes, handed over from their threads."""

    hub: Hub

    def __init__(self) -> None:
        self.undo = None

    async def ready(self) -> None:
        if self.undo is None:
            loop = asyncio.get_running_loop()

            def listener(project_id: int, text: str) -> None:
                if loop.is_closed():
                    undo()
                else:
                    loop.call_soon_threadsafe(self.hub.deliver, project_id, text)

            self.undo = undo = listen_in_process(listener)


# A redis.asyncio client belongs to the event loop it first ran on: one per loop and URL.
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def redis_client(url: str) -> Redis:
    """This event loop's client (and connection pool) of the Redis at `url`."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    if url not in per_loop:
        # Blocking: a thousand sockets closing at once wait their turn for one of the pool's
        # connections, where redis-py's default pool refuses past 100 ("Too many connections").
        pool = BlockingConnectionPool.from_url(
            url, max_connections=100, timeout=5, socket_connect_timeout=2, health_check_interval=30
        )
        per_loop[url] = Redis(connection_pool=pool)
    return per_loop[url]


def hub() -> Hub:
    """This event loop's hub, for the configured Redis (or this process without one)."""
    per_loop = _hubs.setdefault(asyncio.get_running_loop(), {})
    url = settings.CHANNEL_REDIS_URL
    if url not in per_loop:
        source = RedisSource(redis_client(url)) if url else LocalSource()
        per_loop[url] = Hub(source)
    return per_loop[url]
