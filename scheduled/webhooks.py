"""Webhook delivery: the workers' side of common.domain.webhooks' outbox (CONTRACT section 6).

A delivery row is one attempt. The write that made it hands it to the workers after commit
(`deliveries_queue`, one Celery message per batch); a worker claims it, checks the address again,
POSTs the event's envelope signed as Standard Webhooks says, records the outcome, and makes the
next attempt when it failed (after WEBHOOK_RETRY_SCHEDULE's delay, with jitter). Nothing is lost:
- the broker down at the write: the row stays unqueued, and the relay (`relay`, a Beat job)
  queues it once the broker answers;
- a worker killed mid-attempt: its message is redelivered (acks late) and the same task takes
  its claim back at once; a message lost with it is queued again by the relay once the claim's
  lease has passed;
- the receiver down: the retries.
At least once, then: a receiver may see an event twice (the same `webhook-id`), never none.

The attempts of one message go out together, each bounded by WEBHOOK_TIMEOUT_SECONDS from its
address check to the end of its answer, so a receiver that hangs holds one worker slot for at
most that long. They go out on one event loop per process (its own thread), which every worker
thread hands its message's attempts to and waits for: one thread doing a process's HTTP, as a
bare asyncio client would, rather than one loop per worker thread, whose threads each woke for
every socket read and write and spent much of a message waiting for the GIL. Each connection
goes to the address the check returned, with the URL's name as Host header and TLS server
name, and redirects are not followed.
"""

import asyncio
import atexit
import contextlib
import functools
import json
import logging
import os
import random
import ssl
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yarl
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from common.domain import effects, webhooks
from common.domain.events import envelope
from common.domain.models import Event, Webhook, WebhookDelivery
from common.infra.event_push import encode

logger = logging.getLogger(__name__)

TASK = "scheduled.deliver_webhooks"
BATCH = 50  # deliveries per message
LEASE = timedelta(seconds=60)  # a claim older than this: its worker died (attempts take <= 10 s)
# Queued that long ago and not yet claimed: the message was lost (or its process died first).
REQUEUE_AFTER = timedelta(minutes=5)
COUNTDOWN_MAX = 60.0  # sooner retries wait in the broker, later ones in the table, for the relay
RESPONSE_READ_MAX = 64 * 1024  # of a receiver's answer, read (for keep-alive) and dropped
JITTER = 0.2  # each retry delay is drawn from +-20% of the schedule's
USER_AGENT = "Taskwire-Webhooks/1.0"
SEND_TIMEOUT_SECONDS = 5  # waiting for a free producer of the pool
# Idle connections are dropped before the 5 s after which common servers (uvicorn, Node) close
# theirs, so one they are closing is not reused; a session idle that long is closed.
KEEPALIVE_SECONDS = 4.0
POOL_IDLE_SECONDS = KEEPALIVE_SECONDS
LOOKUPS_MAX = 64  # a process's address look-ups at once (a message has at most BATCH)
RETRY_ONCE = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}

Status = WebhookDelivery.Status


# Queueing ---------------------------------------------------------------------------------------


def deliveries_queue(ids: list[int], *, countdown: float | None = None) -> int:
    """Send the deliveries to the workers; those that could not be sent are marked unqueued,
    for the relay. Never raises (it runs after a commit). Returns how many were sent.

    The producers are kombu's pool for the broker settings name (reconnecting once, at once,
    when a pooled connection has gone stale): a write waits at most about one connection
    timeout for a broker that is down.
    """
    from kombu import pools

    from scheduled.celery import app

    sent: list[int] = []
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    try:
        broker = app.connection_for_write(settings.CELERY_BROKER_URL)
        with pools.producers[broker].acquire(block=True, timeout=SEND_TIMEOUT_SECONDS) as producer:
            for start in range(0, len(ids), BATCH):
                batch = ids[start : start + BATCH]
                app.send_task(
                    TASK,
                    args=[batch],
                    queue=queue,
                    producer=producer,
                    countdown=countdown,
                    retry=True,
                    retry_policy=RETRY_ONCE,
                )
                sent += batch
    except Exception as exc:  # kombu's and the socket's errors alike: the relay's
        logger.warning(
            "%d webhook deliveries not queued, left to the relay: %s", len(ids) - len(sent), exc
        )
        try:
            unsent = [pk for pk in ids if pk not in set(sent)]
            WebhookDelivery.objects.filter(pk__in=unsent).update(queued_at=None)
        except Exception as exc:  # the relay requeues them after REQUEUE_AFTER
            logger.warning("webhook deliveries not marked unqueued: %s", exc)
    return len(sent)


def relay(*, now: Any = None) -> dict[str, int]:
    """The Beat job: queue every due pending attempt that never reached a worker (the broker was
    down), or whose message was lost, unless a worker holds it."""
    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(status=Status.PENDING, due_at__lte=now)
    unqueued = Q(queued_at__isnull=True) | Q(queued_at__lt=now - REQUEUE_AFTER)
    unclaimed = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE)
    queued = 0
    ids = list(due.filter(unqueued, unclaimed).order_by("due_at").values_list("pk", flat=True))
    for start in range(0, len(ids), 1000):
        batch = ids[start : start + 1000]
        WebhookDelivery.objects.filter(pk__in=batch).update(queued_at=now)
        sent = deliveries_queue(batch)
        queued += sent
        if sent < len(batch):
            break
    return {"queued": queued}


# One message's attempts -------------------------------------------------------------------------


@dataclass
class Claimed:
    """A claimed attempt with what it needs: its webhook (url None: deleted meanwhile) and its
    event (None: no longer kept)."""

    delivery: WebhookDelivery
    url: str | None
    secret: str
    active: bool
    event: Event | None


@dataclass
class Attempt:
    delivery: WebhookDelivery
    url: str
    secret: str
    msg_id: str
    body: bytes


@dataclass
class Outcome:
    delivery: WebhookDelivery
    response_status: int | None = None
    duration_ms: int | None = None
    error: str = ""
    gone: bool = False  # 410: the webhook is turned off

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


# PostgreSQL: each of a message's two writes is one statement (its own transaction), committed
# without waiting for the disk (`unflushed`: set_config(..., true), that transaction only). Safe for
# deliveries' writes, and only for them: what a crash of the database could take back is its
# last moments' claims and outcomes, so those attempts are pending again and are made again,
# which at-least-once delivery allows. No other transaction does this.
# The claim (a claim another worker holds is left alone), with the webhooks and events it needs.
# Its rows are found by primary key alone, `status` only filtered (`|| ''`: no index serves it):
# as `status = 'pending'` the planner also scanned the partial index of pending rows
# (delivery_pending_due_idx, the relay's) and ANDed the bitmaps, reading every pending row's
# entry (and every dead one not yet vacuumed) at each claim: 12 ms a claim in the bench's
# database, more the longer the backlog.
_CLAIM = """
    WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true)), claimed AS (
        UPDATE common_webhookdelivery SET claimed_at = %(now)s, claimed_by = %(claim)s
        WHERE id = ANY(%(ids)s) AND (status || '') = 'pending'
          AND (claimed_at IS NULL OR claimed_at < %(lapsed)s OR claimed_by = %(claim)s)
        RETURNING id, webhook_id, event_id, attempt
    )
    SELECT claimed.id, claimed.webhook_id, claimed.event_id, claimed.attempt,
        hook.url, hook.secret, hook.active, event.project_id, event.seq, event.type,
        event.occurred_at, event.actor, event.data
    FROM claimed CROSS JOIN unflushed
    LEFT JOIN common_webhook AS hook ON hook.id = claimed.webhook_id
    LEFT JOIN common_event AS event ON event.id = claimed.event_id
"""

# The outcomes of a message's attempts, all in one UPDATE.
_OUTCOMES = """
    WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true))
    UPDATE common_webhookdelivery AS delivery SET status = outcome.status,
        response_status = outcome.response_status, duration_ms = outcome.duration_ms,
        error = outcome.error
    FROM unflushed, unnest(%(ids)s::bigint[], %(statuses)s::text[], %(responses)s::int[],
        %(durations)s::int[], %(errors)s::text[])
        AS outcome(id, status, response_status, duration_ms, error)
    WHERE delivery.id = outcome.id
"""


def _claim(ids: list[int], claim: str) -> list[Claimed]:
    now = timezone.now()
    if connection.vendor == "postgresql":
        params: dict[str, Any] = {
            "now": now,
            "claim": claim,
            "ids": list(ids),
            "lapsed": now - LEASE,
        }
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM, params)
            rows = cursor.fetchall()
        return [_claimed(*row) for row in rows]
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE) | Q(claimed_by=claim)
    with transaction.atomic():
        pending = WebhookDelivery.objects.filter(pk__in=ids, status=Status.PENDING).filter(free)
        claimed = list(pending.select_for_update())
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(
            claimed_at=now, claimed_by=claim
        )
    hooks = Webhook.objects.in_bulk({d.webhook_id for d in claimed})
    events = Event.objects.in_bulk({d.event_id for d in claimed})
    found = []
    for delivery in claimed:
        hook = hooks.get(delivery.webhook_id)
        url, secret, active = (hook.url, hook.secret, hook.active) if hook else (None, "", False)
        found.append(Claimed(delivery, url, secret, active, events.get(delivery.event_id)))
    return found


def _claimed(pk, hook_id, event_id, attempt, url, secret, active, *event) -> Claimed:
    """A row of _CLAIM."""
    delivery = WebhookDelivery(
        pk=pk, webhook_id=hook_id, event_id=event_id, attempt=attempt, status=Status.PENDING
    )
    project_id, seq, type, occurred_at, actor, data = event
    found = None
    if project_id is not None:
        found = Event(
            id=event_id,
            project_id=project_id,
            seq=seq,
            type=type,
            occurred_at=occurred_at,
            actor=actor,
            data=json.loads(data) if isinstance(data, str) else data,
        )
    return Claimed(delivery, url, secret or "", bool(active), found)


def deliver(ids: list[int], *, claim: str) -> dict[str, int]:
    """Claim the pending attempts among `ids`, make them, record what happened."""
    claimed = _claim(ids, claim)
    if not claimed:
        return {"claimed": 0}
    attempts, outcomes = [], []
    bodies: dict[Any, bytes] = {}  # an event to several webhooks: encoded once
    for found in claimed:
        delivery, event = found.delivery, found.event
        if found.url is None:  # deleted meanwhile: its log went with it
            continue
        if not found.active:
            outcomes.append(Outcome(delivery, error="The webhook is not active."))
        elif event is None:
            outcomes.append(Outcome(delivery, error="The event is no longer kept."))
        else:
            body = bodies.get(event.id)
            if body is None:
                body = bodies[event.id] = encode(envelope(event)).encode()
            attempts.append(Attempt(delivery, found.url, found.secret, str(event.id), body))
    outcomes += _sender().send_all(attempts)
    _record(outcomes, {found.delivery.webhook_id: found.active for found in claimed})
    return {"claimed": len(claimed), "succeeded": sum(o.succeeded for o in outcomes)}


def _record(outcomes: list[Outcome], active: dict[int, bool]) -> None:
    """The outcomes; for a failed attempt the next one (or the webhook turned off), together."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    for outcome in outcomes:
        delivery = outcome.delivery
        delivery.status = Status.SUCCEEDED if outcome.succeeded else Status.FAILED
        delivery.response_status = outcome.response_status
        delivery.duration_ms = outcome.duration_ms
        delivery.error = outcome.error[:2000]
    failed = [outcome for outcome in outcomes if not outcome.succeeded]
    with transaction.atomic() if failed else contextlib.nullcontext():
        _outcomes_write([outcome.delivery for outcome in outcomes])
        now = timezone.now()
        for outcome in failed:
            delivery = outcome.delivery
            if outcome.gone:
                reason = "The receiver answered 410 Gone."
                Webhook.objects.filter(pk=delivery.webhook_id).update(
                    active=False, disabled_reason=reason
                )
                continue
            if not active[delivery.webhook_id] or delivery.attempt > len(schedule):
                continue
            if outcome.error.startswith("The event is no longer kept"):
                continue
            delay = schedule[delivery.attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 (jitter)
            soon = delay <= COUNTDOWN_MAX
            retry = WebhookDelivery.objects.create(
                webhook_id=delivery.webhook_id,
                event_id=delivery.event_id,
                attempt=delivery.attempt + 1,
                due_at=now + timedelta(seconds=delay),
                queued_at=now if soon else None,  # a later one waits for the relay
            )
            if soon:
                effects.on_commit(deliveries=[retry.pk], deliveries_countdown=delay)


def _outcomes_write(deliveries: list[WebhookDelivery]) -> None:
    if connection.vendor != "postgresql":
        fields = ["status", "response_status", "duration_ms", "error"]
        WebhookDelivery.objects.bulk_update(deliveries, fields)
        return
    params = {
        "ids": [d.pk for d in deliveries],
        "statuses": [d.status for d in deliveries],
        "responses": [d.response_status for d in deliveries],
        "durations": [d.duration_ms for d in deliveries],
        "errors": [d.error for d in deliveries],
    }
    with connection.cursor() as cursor:
        cursor.execute(_OUTCOMES, params)


# Sending ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _request_parts(url: str) -> tuple[str, str]:
    """(Host header, request target) of a webhook's URL, encoded as aiohttp sends them."""
    parsed = yarl.URL(url)
    return parsed.host_port_subcomponent or "", parsed.raw_path_qs


def _connect_url(target: webhooks.Target, path: str) -> yarl.URL:
    """The request's URL with the checked address as its host: aiohttp connects to it, no
    look-up (an address needs none)."""
    host = str(target.address)
    host = f"[{host}]" if target.address.version == 6 else host
    return yarl.URL(f"{target.scheme}://{host}:{target.port}{path}", encoded=True)


class _Sender:
    """A process's event loop, on a thread of its own, and its connection pools (aiohttp's):
    a session per (scheme, name, address, port), so kept-alive connections are reused only for
    the name and address they were made for, whichever worker thread's message the next attempt
    is in. No cookies are kept, no redirect is followed, no proxy used (aiohttp reads no proxy
    from the environment unless asked to), nothing decompressed.

    aiohttp, not httpx: httpcore's pure-Python HTTP/1.1 (h11) and its pool's per-request checks
    of every connection were over half of a worker's CPU; on aiohttp's C parser a worker's CPU
    per delivery in bench webhooks went from 1.97-2.29 ms to 1.19-1.29 ms."""

    def __init__(self) -> None:
        self.pid = os.getpid()  # a forked child makes its own (the loop's thread is not copied)
        self.loop = asyncio.new_event_loop()
        self.sessions: dict[tuple, aiohttp.ClientSession] = {}
        self.used: dict[tuple, float] = {}  # a session's last use (monotonic)
        self.busy: Counter[tuple] = Counter()  # a session's attempts in flight: never closed then
        self.swept = time.monotonic()
        self.tls = ssl.create_default_context()  # the system's CAs, the name checked
        # The look-ups (asyncio.to_thread) of every thread's attempts: threads enough for them
        # all at once (made as needed), so names slow to resolve do not queue the others.
        lookups = ThreadPoolExecutor(LOOKUPS_MAX, thread_name_prefix="webhook-lookup")
        self.loop.set_default_executor(lookups)
        thread = threading.Thread(target=self.loop.run_forever, name="webhook-sender", daemon=True)
        thread.start()
        atexit.register(self.close)

    def close(self) -> None:
        """Close every session (their connections), as the process exits."""
        if self.pid != os.getpid() or not self.loop.is_running():
            return
        with contextlib.suppress(Exception):  # exiting: nothing more to do about it
            asyncio.run_coroutine_threadsafe(self._close_all(), self.loop).result(timeout=5)

    async def _close_all(self) -> None:
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await session.close()

    def send_all(self, attempts: list[Attempt]) -> list[Outcome]:
        """The attempts' outcomes, from the process's loop (each attempt bounded by its
        timeout there); the calling thread waits."""
        if not attempts:
            return []
        return asyncio.run_coroutine_threadsafe(self._send_all(attempts), self.loop).result()

    async def _send_all(self, attempts: list[Attempt]) -> list[Outcome]:
        outcomes = list(await asyncio.gather(*(self._send(attempt) for attempt in attempts)))
        await self._close_idle()
        return outcomes

    async def _close_idle(self) -> None:
        """Close the sessions that no attempt used for POOL_IDLE_SECONDS (aiohttp has closed
        their expired connections) and none is using, looking at most once in that time, so
        that a process does not keep a session for every name it ever sent to."""
        now = time.monotonic()
        if now - self.swept < POOL_IDLE_SECONDS:
            return
        self.swept = now
        idle = [
            key
            for key, used in self.used.items()
            if now - used >= POOL_IDLE_SECONDS and not self.busy[key]
        ]
        for key in idle:
            del self.used[key]
            self.busy.pop(key, None)
            with contextlib.suppress(aiohttp.ClientError, OSError):  # closing: nothing to lose
                await self.sessions.pop(key).close()

    async def _send(self, attempt: Attempt) -> Outcome:
        outcome = Outcome(attempt.delivery)
        timeout = settings.WEBHOOK_TIMEOUT_SECONDS
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                if webhooks.is_literal(urlsplit(attempt.url).hostname or ""):
                    target = webhooks.address_check(attempt.url)  # no look-up to wait for
                else:  # the look-up on a thread: a resolver that hangs costs the timeout only
                    target = await asyncio.to_thread(webhooks.address_check, attempt.url)
                outcome.response_status = await self._post(target, attempt)
        except webhooks.AddressRefused as exc:
            outcome.error = str(exc)
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
            outcome.error = f"No answer within {timeout:g} s."
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, TLS refused
            outcome.error = f"Could not connect: {exc}"
        except aiohttp.ClientError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.duration_ms = round((time.monotonic() - started) * 1000)
        status = outcome.response_status
        if status is not None and not outcome.succeeded:
            if status == 410:
                outcome.gone = True
            kind = "a redirect, not followed" if 300 <= status < 400 else "not 2xx"
            outcome.error = f"HTTP {status} ({kind})."
        return outcome

    async def _post(self, target: webhooks.Target, attempt: Attempt) -> int:
        timestamp = int(time.time())
        host, path = _request_parts(attempt.url)
        signature = webhooks.sign(attempt.secret, attempt.msg_id, timestamp, attempt.body)
        headers = {
            "Host": host,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": attempt.msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        key = (target.scheme, target.host, str(target.address), target.port)
        session = self._session(key)
        self.busy[key] += 1
        try:
            async with session.post(
                _connect_url(target, path),
                data=attempt.body,
                headers=headers,
                allow_redirects=False,
                ssl=self.tls if target.scheme == "https" else True,
                server_hostname=target.host if target.scheme == "https" else None,
            ) as response:
                read = 0
                async for chunk in response.content.iter_any():  # read (for keep-alive), dropped
                    read += len(chunk)
                    if read > RESPONSE_READ_MAX:  # the rest unread: aiohttp closes the connection
                        break
        finally:
            self.busy[key] -= 1
            self.used[key] = time.monotonic()
        return response.status

    def _session(self, key: tuple) -> aiohttp.ClientSession:
        self.used[key] = time.monotonic()
        session = self.sessions.get(key)
        if session is None:
            connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=KEEPALIVE_SECONDS)
            session = self.sessions[key] = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("Accept", "Accept-Encoding"),
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None),  # the attempt's own, above
            )
        return session


_made = threading.Lock()
_process_sender: _Sender | None = None


def _sender() -> _Sender:
    """This process's sender, made at its first attempt."""
    global _process_sender
    with _made:
        if _process_sender is None or _process_sender.pid != os.getpid():
            _process_sender = _Sender()
        return _process_sender
