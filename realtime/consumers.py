"""The /ws/notifications/ consumer: committed events, per project in `seq` order, resumable.

Live events come from this process's hub (realtime.fanout), best effort and possibly out of
order across writers; each socket handles its own in arrival order. An idle socket sends an event
at once, in the hub's call (realtime.eager): no task per socket per event; one with a send in
flight (a replay, a slow client) queues it for that send's task, which holds up no other socket.
The event log fills every gap: a project's events are sent strictly in `seq` order, each once,
replayed from the log when a client resumes (`since`) or when a live event skips ahead. Without a
cursor a client starts with the first event logged after it connected.
"""

import asyncio
import contextvars
import logging
import random
import uuid
from collections import deque
from datetime import UTC, datetime

import redis.exceptions
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Max, Min
from django.utils import timezone

from common.domain.events import envelope, event_list_after
from common.domain.models import Event, Membership, Project
from common.infra.event_push import encode
from realtime import eager
from realtime.auth import accepted_subprotocol, authenticate
from realtime.fanout import hub
from realtime.socket_quota import MAX_PER_USER, socket_quota
from realtime.subscription import SubscriptionError, parse_subscription

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455: the server cannot serve it now
CLOSE_INTERNAL_ERROR = 1011

# Redis (the event subscription, the socket quota) refusing, failing or too slow to answer.
REDIS_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    TimeoutError,
    ConnectionError,
)
REDIS_WAIT_SECONDS = 5


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        # The socket's own context, where its sends run: not the hub's caller's.
        self.context = contextvars.copy_context()
        self.connected_at = timezone.now()
        self.last_seq: dict[int, int] = {}
        self.timers: list[asyncio.Task] = []
        # Live events waiting for the send in flight; `busy` while one is (or the connect's replay).
        self.inbox: deque[tuple[int, int, str | None, bool]] = deque()
        self.busy = True
        self.forwarding: asyncio.Task | None = None
        self.closed = False  # by the server: nothing more is sent
        self.fanout = hub()  # this loop's, kept: the socket leaves the hub it joined
        self.quota = socket_quota()
        self.joined = False
        self.member_of: set[int] = set()
        self.quota_holder: str | None = None
        self.socket_id = uuid.uuid4().hex
        caller = await authenticate(self.scope)
        if caller is None:
            await self._refuse(CLOSE_UNAUTHORIZED)
            return
        self.username, self.password_claim = caller.username, caller.password_claim
        try:
            self.subscription = parse_subscription(self.scope.get("query_string", b""))
        except SubscriptionError as exc:
            await self._refuse(CLOSE_BAD_REQUEST, detail=str(exc))
            return
        try:
            if not await self._claim_place(caller.username):
                await self._refuse(CLOSE_TOO_MANY_SOCKETS, detail=_TOO_MANY_SOCKETS)
                return
            # Subscribed before the handshake completes: a client that writes right after
            # connecting gets the events of its own writes.
            await self._join_hub()
        except REDIS_UNAVAILABLE as exc:
            logger.warning("websocket refused, Redis is unavailable: %s", exc)
            await self._release_place()
            await self._refuse(CLOSE_TRY_AGAIN_LATER)
            return
        await self.accept()
        asked = {*self.subscription.projects, *self.subscription.since}
        for project_id in sorted(asked - self.member_of):  # not theirs: nothing of it comes
            await self.send_json({"type": "unsubscribed", "project": project_id})
        for project_id, seq in self.subscription.since.items():
            if self.wants(project_id) and project_id in self.member_of:
                await self._resume(project_id, seq)
        self.busy = False
        if self.inbox:  # live events that came during the replay
            self._take(self.inbox.popleft())
        self.timers = [
            asyncio.create_task(self._close_at(caller.expires_at)),
            asyncio.create_task(self._ping_forever()),
        ]

    async def accept(self, subprotocol=None, headers=None) -> None:
        await super().accept(subprotocol or accepted_subprotocol(self.scope), headers)

    async def _refuse(self, code: int, detail: str | None = None) -> None:
        """Accept, then close at once, so the client can read why (CONTRACT section 2)."""
        await self.accept()
        if detail:
            await self.send_json({"type": "error", "detail": detail})
        await self.close(code=code)

    async def close(self, code=None, reason=None) -> None:
        self.closed = True
        await super().close(code, reason)

    async def disconnect(self, code: int) -> None:
        self.closed = True
        if self.joined:
            self.fanout.leave(self)
        for timer in self.timers:
            timer.cancel()
        if self.forwarding is not None:
            self.forwarding.cancel()
        await self._release_place()

    async def receive_json(self, content, **kwargs) -> None:
        if isinstance(content, dict) and content.get("action") == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.send_json(
                {"type": "error", "detail": 'Unknown message: send {"action": "ping"}.'}
            )

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        try:
            await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
        except (ValueError, TypeError, RecursionError):  # not JSON, binary, or nested too deep
            await self.send_json({"type": "error", "detail": "Messages must be JSON text."})

    def wants(self, project_id: int) -> bool:
        return self.subscription.wants(project_id)

    def offer(self, project_id: int, seq: int, text: str, *, starts: bool = False) -> None:
        """A live event from the hub: sent now if the socket is idle, else queued (never blocks
        the hub)."""
        self._take((project_id, seq, text, starts))

    def unsubscribed(self, project_id: int) -> None:
        self._take((project_id, 0, None, False))

    def revoke(self) -> None:
        asyncio.get_running_loop().create_task(self.close(code=CLOSE_UNAUTHORIZED))

    def _take(self, item: tuple[int, int, str | None, bool]) -> None:
        if self.closed:
            return
        if self.busy:
            self.inbox.append(item)
        else:
            self.busy = True
            self.forwarding = eager.start(self._forward_all(item), self.context.copy())

    async def _forward_all(self, item: tuple[int, int, str | None, bool]) -> None:
        """Send `item`, then whatever was queued meanwhile; idle again once the inbox is empty."""
        try:
            while True:
                await self._forward(*item)
                if not self.inbox or self.closed:
                    return
                item = self.inbox.popleft()
        except OSError:  # gone (ASGI: the server's send raises one): its disconnect() follows
            self.closed = True
        except DatabaseError as exc:  # a gap not filled: the client resumes from its cursor
            logger.warning("websocket closed, the event log is unavailable: %s", exc)
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
        except Exception:  # this socket's alone: never the hub's, which goes on to the others
            logger.exception("websocket closed, an event could not be sent")
            self.closed = True
            asyncio.get_running_loop().create_task(self.close(code=CLOSE_INTERNAL_ERROR))
        finally:
            self.busy, self.forwarding = False, None

    async def _forward(self, project_id: int, seq: int, text: str | None, starts: bool) -> None:
        """Send a live event in its project's `seq` order, filling a gap from the log first."""
        if text is None:  # no longer a member: in place of the member.removed about them
            self.last_seq.pop(project_id, None)
            await self.send_json({"type": "unsubscribed", "project": project_id})
            return
        if starts:  # a member from this event on: nothing of the project before it
            self.last_seq[project_id] = seq - 1
        last = self.last_seq.get(project_id)
        if last is None:  # the project's first event on this socket: start where we connected
            last = self.last_seq[project_id] = await _seq_before(project_id, self.connected_at)
        if seq == last + 1:
            self.last_seq[project_id] = seq
            await self.send(text_data=text)
        elif seq > last + 1:  # an earlier event is late or was lost: the log has it
            await self._send_logged(project_id, after=last)

    async def _claim_place(self, username: str) -> bool:
        """One of the user's MAX_PER_USER places, across every realtime process."""
        async with asyncio.timeout(REDIS_WAIT_SECONDS):
            claimed = await self.quota.claim(username, self.socket_id)
        if claimed:
            self.quota_holder = username
        return claimed

    async def _release_place(self) -> None:
        if self.quota_holder is None:
            return
        username, self.quota_holder = self.quota_holder, None
        try:
            async with asyncio.timeout(REDIS_WAIT_SECONDS):
                await self.quota.release(username, self.socket_id)
        except REDIS_UNAVAILABLE as exc:  # its lease lapses instead
            logger.warning("websocket place not released, Redis is unavailable: %s", exc)

    async def _join_hub(self) -> None:
        # Watched first, memberships read after: a membership that changes in between arrives as
        # its event, and joining twice is joining once.
        async with asyncio.timeout(REDIS_WAIT_SECONDS):
            await self.fanout.watch(self)
        self.joined = True
        self.member_of = await _member_projects(self.username)
        self.fanout.join(self, [pk for pk in self.member_of if self.wants(pk)])

    async def _resume(self, project_id: int, seq: int) -> None:
        oldest, latest = await _logged_range(project_id)
        if oldest <= seq + 1 and seq <= latest:
            self.last_seq[project_id] = seq
            await self._send_logged(project_id, after=seq)
        else:  # pruned past the cursor, or a cursor this server never issued
            await self.send_json({"type": "resync.required", "project": project_id})
            self.last_seq[project_id] = latest

    async def _send_logged(self, project_id: int, *, after: int) -> None:
        while batch := await database_sync_to_async(event_list_after)(
            project_id=project_id, seq=after
        ):
            for event in batch:
                await self._deliver(envelope(event))
            after = batch[-1].seq

    async def _deliver(self, event: dict) -> None:
        self.last_seq[event["project"]] = event["seq"]
        await self.send(text_data=encode(event))  # the same text as a live event's

    async def _close_at(self, expires_at: datetime) -> None:
        await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()))
        await self.close(code=CLOSE_UNAUTHORIZED)

    async def _ping_forever(self) -> None:
        interval = settings.REALTIME_PING_SECONDS
        # Clients that connected together (after a deploy, say) must not all be pinged at once.
        await asyncio.sleep(random.uniform(0.5, 1.0) * interval)  # noqa: S311 (ping jitter, not a secret)
        while True:
            await self.send_json({"type": "ping"})
            await asyncio.sleep(interval)


_TOO_MANY_SOCKETS = f"At most {MAX_PER_USER} sockets per user are open at once."


@database_sync_to_async
def _member_projects(username: str) -> set[int]:
    memberships = Membership.objects.filter(user__username=username)
    return set(memberships.values_list("project_id", flat=True))


@database_sync_to_async
def _seq_before(project_id: int, moment: datetime) -> int:
    """The project's last seq logged before `moment` (0 if none)."""
    events = Event.objects.filter(project_id=project_id, occurred_at__lt=moment)
    return events.aggregate(seq=Max("seq"))["seq"] or 0


@database_sync_to_async
def _logged_range(project_id: int) -> tuple[int, int]:
    """The oldest seq still logged for the project and its latest seq (oldest > latest: none)."""
    seqs = Event.objects.filter(project_id=project_id).aggregate(
        oldest=Min("seq"), latest=Max("seq")
    )
    latest = Project.objects.filter(pk=project_id).values_list("event_seq", flat=True).first()
    latest = max(latest or 0, seqs["latest"] or 0)
    return (seqs["oldest"] or latest + 1), latest
