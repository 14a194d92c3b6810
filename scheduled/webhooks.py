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
most that long. They go out on one event loop per process (scheduled.webhook_sender). Each
connection goes to the address the check returned, with the URL's name as Host header and TLS
server name, and redirects are not followed.
"""

import contextlib
import json
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from common.domain import effects
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
JITTER = 0.2  # each retry delay is drawn from +-20% of the schedule's
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
    from scheduled.webhook_sender import sender  # aiohttp's import (0.6 s) only where it sends

    outcomes += sender().send_all(attempts)
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
