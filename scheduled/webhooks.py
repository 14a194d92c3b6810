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
most that long. Each connection goes to the address the check returned, with the URL's name as
Host header and TLS server name, and redirects are not followed.
"""

import asyncio
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
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


# PostgreSQL: the claim in one statement (a claim another worker holds is left alone).
_CLAIM = """
    UPDATE common_webhookdelivery SET claimed_at = %(now)s, claimed_by = %(claim)s
    WHERE id = ANY(%(ids)s) AND status = 'pending'
      AND (claimed_at IS NULL OR claimed_at < %(lapsed)s OR claimed_by = %(claim)s)
    RETURNING id, webhook_id, event_id, attempt
"""


def _without_waiting_for_the_disk() -> None:
    """The current transaction commits without waiting for its WAL to reach the disk.

    Safe for deliveries' transactions, and only for them: what a crash of the database could
    take back is its last moments' claims and outcomes, each whole with what it made (the next
    attempt, a 410's turning the webhook off), so those attempts are pending again and are made
    again, which at-least-once delivery allows. No other transaction does this.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _claim(ids: list[int], claim: str) -> list[WebhookDelivery]:
    now = timezone.now()
    if connection.vendor == "postgresql":
        params: dict[str, Any] = {
            "now": now,
            "claim": claim,
            "ids": list(ids),
            "lapsed": now - LEASE,
        }
        with transaction.atomic(), connection.cursor() as cursor:
            _without_waiting_for_the_disk()
            cursor.execute(_CLAIM, params)
            rows = cursor.fetchall()
        return [
            WebhookDelivery(
                pk=pk, webhook_id=hook, event_id=event, attempt=attempt, status=Status.PENDING
            )
            for pk, hook, event, attempt in rows
        ]
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE) | Q(claimed_by=claim)
    with transaction.atomic():
        pending = WebhookDelivery.objects.filter(pk__in=ids, status=Status.PENDING).filter(free)
        claimed = list(pending.select_for_update())
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(
            claimed_at=now, claimed_by=claim
        )
    return claimed


def deliver(ids: list[int], *, claim: str) -> dict[str, int]:
    """Claim the pending attempts among `ids`, make them, record what happened."""
    claimed = _claim(ids, claim)
    if not claimed:
        return {"claimed": 0}
    hooks = Webhook.objects.in_bulk({d.webhook_id for d in claimed})
    events = Event.objects.in_bulk({d.event_id for d in claimed})
    attempts, outcomes = [], []
    for delivery in claimed:
        hook, event = hooks.get(delivery.webhook_id), events.get(delivery.event_id)
        if hook is None:  # deleted meanwhile: its log went with it
            continue
        if not hook.active:
            outcomes.append(Outcome(delivery, error="The webhook is not active."))
        elif event is None:
            outcomes.append(Outcome(delivery, error="The event is no longer kept."))
        else:
            body = encode(envelope(event)).encode()
            attempts.append(Attempt(delivery, hook.url, hook.secret, str(event.id), body))
    outcomes += _sender().send_all(attempts)
    _record(outcomes, hooks)
    return {"claimed": len(claimed), "succeeded": sum(o.succeeded for o in outcomes)}


def _record(outcomes: list[Outcome], hooks: dict[int, Webhook]) -> None:
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    now = timezone.now()
    for outcome in outcomes:
        delivery = outcome.delivery
        delivery.status = Status.SUCCEEDED if outcome.succeeded else Status.FAILED
        delivery.response_status = outcome.response_status
        delivery.duration_ms = outcome.duration_ms
        delivery.error = outcome.error[:2000]
    fields = ["status", "response_status", "duration_ms", "error"]
    with transaction.atomic():
        _without_waiting_for_the_disk()
        WebhookDelivery.objects.bulk_update([outcome.delivery for outcome in outcomes], fields)
        for outcome in outcomes:
            if outcome.succeeded:
                continue
            delivery = outcome.delivery
            hook = hooks[delivery.webhook_id]
            if outcome.gone:
                reason = "The receiver answered 410 Gone."
                Webhook.objects.filter(pk=hook.pk).update(active=False, disabled_reason=reason)
                continue
            if outcome.succeeded or not hook.active or delivery.attempt > len(schedule):
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


# Sending ----------------------------------------------------------------------------------------


class _Sender:
    """One thread's event loop and HTTP clients: a client per (scheme, name, address, port), so
    kept-alive connections are reused only for the name and address they were made for."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.clients: dict[tuple, httpx.AsyncClient] = {}
        self.tls = httpx.create_ssl_context()  # loading the CA bundle once, not per client

    def send_all(self, attempts: list[Attempt]) -> list[Outcome]:
        if not attempts:
            return []
        return self.loop.run_until_complete(self._send_all(attempts))

    async def _send_all(self, attempts: list[Attempt]) -> list[Outcome]:
        return list(await asyncio.gather(*(self._send(attempt) for attempt in attempts)))

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
        except TimeoutError:
            outcome.error = f"No answer within {timeout:g} s."
        except httpx.ConnectError as exc:
            outcome.error = f"Could not connect: {exc}" if str(exc) else "Could not connect."
        except httpx.HTTPError as exc:
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
        headers = {
            "Host": httpx.URL(attempt.url).netloc.decode("ascii"),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": attempt.msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": webhooks.sign(
                attempt.secret, attempt.msg_id, timestamp, attempt.body
            ),
        }
        address = target.address
        netloc = f"[{address}]" if address.version == 6 else str(address)
        url = f"{target.scheme}://{netloc}:{target.port}{target.path}"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        client = self._client(target)
        request = client.build_request(
            "POST", url, content=attempt.body, headers=headers, extensions=extensions
        )
        response = await client.send(request, stream=True)
        try:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > RESPONSE_READ_MAX:
                    break
        finally:
            await response.aclose()
        return response.status_code

    def _client(self, target: webhooks.Target) -> httpx.AsyncClient:
        key = (target.scheme, target.host, str(target.address), target.port)
        client = self.clients.get(key)
        if client is None:
            client = self.clients[key] = httpx.AsyncClient(
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                verify=self.tls,
                follow_redirects=False,
                trust_env=False,  # no proxy from the environment: the checked address or none
            )
        return client


_local = threading.local()


def _sender() -> _Sender:
    sender = getattr(_local, "sender", None)
    if sender is None:
        sender = _local.sender = _Sender()
    return sender
