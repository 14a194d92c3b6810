"""The fan-out: one subscription per process to every project's events, handed to the sockets.

A hub per event loop holds ONE Redis pub/sub subscription (redis.asyncio, public API) to the
channels common.infra.event_push publishes on, and a dict project -> the sockets that want it. Each
message is parsed once per process (for its seq); a delivery is a set lookup and, per socket,
its own `offer`, which sends the text at once if the socket is idle (realtime.consumers) and
never waits. Sockets join per project; "every project" is an explicit, separate set, for
sockets that named none (while memberships do not exist, that is every project there is).
Without Redis (the local mode) the events come from this process's writes instead
(common.infra.event_push.listen_in_process).

Best effort, as the push is: a message lost while Redis is away shows as a gap in `seq`, which
each socket fills from the event log.
"""

import asyncio
import contextlib
import json
import logging
import weakref
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from common.api.bearer import password_claim
from common.infra.event_push import (
    event_batch_channel,
    event_channel_pattern,
    listen_in_process,
    project_of_channel,
)

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0)  # waits between attempts while Redis is away
ACTIVE_CHECK_SECONDS = 5.0  # a deactivated user's sockets close within this (CONTRACT: 10 s)


class Listener(Protocol):
    username: str
    password_claim: str  # its token's (realtime.auth): another password than the user's closes it

    def wants(self, project_id: int) -> bool:
        """Whether the socket asked for this project (`projects=`), membership aside."""

    def offer(self, project_id: int, seq: int, text: str, *, starts: bool = False) -> None:
        """Take one live event (must not wait: send it now, or queue it). `starts`: the socket's
        first event of the project, which it was not a member of before."""

    def unsubscribed(self, project_id: int) -> None:
        """The socket's user is no longer a member of the project (must not block)."""

    def revoke(self) -> None:
        """The socket's user was deactivated or deleted, or their password changed: close it
        (must not block)."""


# The events that change who may hear a project, and whose membership they change.
_JOINS = {"member.added": "data", "project.created": "actor"}
_LEAVES = {"member.removed"}


class Hub:
    """Which sockets of this process hear which project's events: those of its members.

    A socket joins the projects its user is a member of (read when it connects), and the hub
    keeps that true as events arrive, in the one order they arrive in: a `member.added` (or a
    `project.created`) about the user joins their sockets to the project from that event on; a
    `member.removed` about them takes their sockets out and tells them `unsubscribed` in its
    place. A delivery is a set lookup; no socket is handed an event of a project its user is
    not a member of.
    """

    def __init__(self, source: "RedisSource | LocalSource") -> None:
        self.source = source
        self.by_project: defaultdict[int, set[Listener]] = defaultdict(set)
        self.by_user: defaultdict[str, set[Listener]] = defaultdict(set)
        self._police: asyncio.Task | None = None
        self._check_now = asyncio.Event()
        source.hub = self

    async def watch(self, listener: Listener) -> None:
        """Follow the membership changes of `listener.username`; returns once the subscription is
        live (so every event committed after it reaches the hub), raises ConnectionError while
        the source cannot subscribe."""
        await self.source.ready()
        self.by_user[listener.username].add(listener)
        if self._police is None or self._police.done():
            self._police = asyncio.create_task(self._police_forever())

    def check_users(self) -> None:
        """Check the users' rows now, not at the next round (common.infra.user_changes: the
        database said a user's tokens ended)."""
        self._check_now.set()

    async def _police_forever(self) -> None:
        """Close the sockets of users deactivated, deleted or given another password meanwhile,
        within seconds, however that was done (a bulk update() too: this reads the rows), and at
        once when told (check_users)."""
        while self.by_user:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_now.wait(), ACTIVE_CHECK_SECONDS)
            self._check_now.clear()
            await self._check_once()

    async def _check_once(self) -> None:
        usernames = list(self.by_user)
        try:
            claims = await _active_password_claims(usernames)
        except DatabaseError as exc:  # checked again next time
            logger.warning("realtime: could not check users are active: %s", exc)
            return
        # The users read only: one whose first socket came while the rows were read is not
        # missing from them (it was closed as if deactivated), it is checked next time.
        revoked = [
            listener
            for username in usernames
            for listener in self.by_user.get(username, ())
            if claims.get(username) != listener.password_claim
        ]
        for listener in revoked:
            self.leave(listener)
            listener.revoke()

    def join(self, listener: Listener, projects: Iterable[int]) -> None:
        """Deliver the events of `projects` (its user's, as read after `watch`) to `listener`."""
        for project_id in projects:
            self.by_project[project_id].add(listener)

    def leave(self, listener: Listener, projects: Iterable[int] | None = None) -> None:
        """Stop delivering `projects` (None: everything, and the user's changes) to `listener`."""
        if projects is None:
            _discard(self.by_user, listener.username, listener)
            projects = [pk for pk, listeners in self.by_project.items() if listener in listeners]
        for project_id in projects:
            _discard(self.by_project, project_id, listener)

    def deliver(self, project_id: int | None, text: str) -> None:
        """Hand one event (its envelope's text) to the sockets that hear its project (None: the
        project the envelope names, for a batch's events)."""
        event = json.loads(text)
        seq, kind = event["seq"], event.get("type")
        if project_id is None:
            project_id = event["project"]
        leaving: set[Listener] = set()
        if kind in _LEAVES:
            leaving = self.by_user.get(event["data"]["username"], set())
            for listener in leaving:
                _discard(self.by_project, project_id, listener)
                listener.unsubscribed(project_id)
        for listener in self.by_project.get(project_id, ()):
            listener.offer(project_id, seq, text)
        if kind in _JOINS:
            about = event["data"]["username"] if _JOINS[kind] == "data" else event["actor"]
            for listener in self.by_user.get(about or "", ()):
                if listener.wants(project_id) and listener not in self.by_project[project_id]:
                    self.by_project[project_id].add(listener)
                    listener.offer(project_id, seq, text, starts=True)


@database_sync_to_async
def _active_password_claims(usernames: list[str]) -> dict[str, str]:
    """The password claim (common.api.bearer) of each of these users still active."""
    users = get_user_model().objects.filter(username__in=usernames, is_active=True)
    return {
        username: password_claim(password)
        for username, password in users.values_list("username", "password")
    }


def _discard(index: dict, key, listener: Listener) -> None:
    listeners = index.get(key)
    if listeners is not None:
        listeners.discard(listener)
        if not listeners:
            del index[key]


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
            # Redis sends one connection's messages in the order they were published, whatever
            # their channels: a batch's events and single ones arrive as they were pushed.
            await pubsub.psubscribe(event_channel_pattern())
            await pubsub.subscribe(event_batch_channel())
            async for message in pubsub.listen():
                if message["type"] == "pmessage":
                    channel = message["channel"].decode()
                    self.hub.deliver(project_of_channel(channel), message["data"].decode())
                elif message["type"] == "message":  # the batch channel: one event a line
                    for text in message["data"].decode().split("\n"):
                        self.hub.deliver(None, text)
                elif message["type"] == "subscribe":  # the second confirmed: publishes reach us
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
