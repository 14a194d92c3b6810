"""Events: what a write changed, logged in its transaction, and what follows from each after commit.

`publish` appends the event to the log (domain.models.Event) inside the write's transaction, with
the project's next `seq` taken under the project's row lock, so `seq` order is commit order and a
rolled-back write leaves no event. Its effects (CACHE_VERSIONS below, the push to the realtime
service) leave after commit from domain.effects; if the push fails the event is still in the log,
and clients get it when they resume or at the next gap.
"""

import json
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import F
from django.utils import timezone

from common.domain import effects, webhooks
from common.domain.models import Event, Project, WebhookDelivery

logger = logging.getLogger(__name__)


def retention() -> timedelta:
    """How long events are kept (EVENT_RETENTION_DAYS): resumes and the feed reach that far."""
    return timedelta(days=settings.EVENT_RETENTION_DAYS)


class EventType(StrEnum):
    PROJECT_CREATED = "project.created"
    PROJECT_UPDATED = "project.updated"
    PROJECT_DELETED = "project.deleted"
    TASK_CREATED = "task.created"
    TASK_UPDATED = "task.updated"
    TASK_DELETED = "task.deleted"
    COMMENT_CREATED = "comment.created"
    SUMMARY_GENERATED = "summary.generated"
    MEMBER_ADDED = "member.added"
    MEMBER_UPDATED = "member.updated"
    MEMBER_REMOVED = "member.removed"


# The list-cache versions (common.infra.cache) each event's commit makes stale; `{project}` is the
# event's project (and, for a task that moved, the project it left).
_TASK_LISTS = ("tasks", "tasks:project:{project}")
CACHE_VERSIONS: dict[EventType, tuple[str, ...]] = {
    EventType.PROJECT_CREATED: ("projects",),
    EventType.PROJECT_UPDATED: ("projects",),
    EventType.PROJECT_DELETED: ("projects", *_TASK_LISTS),  # its tasks leave every list
    EventType.TASK_CREATED: _TASK_LISTS,
    EventType.TASK_UPDATED: _TASK_LISTS,
    EventType.TASK_DELETED: _TASK_LISTS,
    EventType.COMMENT_CREATED: _TASK_LISTS,  # the task's comment_count
    EventType.SUMMARY_GENERATED: (),
    # No page changes; the member's own vouch to the hit path does (publish's readers_changed).
    EventType.MEMBER_ADDED: (),
    EventType.MEMBER_UPDATED: (),
    EventType.MEMBER_REMOVED: (),
}


def cache_versions(type: EventType, *project_ids: int) -> list[str]:
    """The versions an event of `type` in these projects invalidates."""
    templates = CACHE_VERSIONS[type]
    return [name.format(project=pk) for pk in project_ids for name in templates]


def publish(
    *,
    type: EventType,
    project_id: int,
    data: dict[str, Any],
    actor: AbstractBaseUser | None,
    moved_from: int | None = None,
    readers_changed: tuple[int, ...] = (),
) -> Event:
    """Log the event in the current transaction; its effects leave after commit.

    `moved_from`: the project a task left; its lists change too, though the event is not its.
    `readers_changed`: users whose memberships this write changed: the cache's hit path stops
    vouching for them until Django has read their memberships again.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("publish() must run inside the write's transaction")
    now, username = timezone.now(), actor.get_username() if actor else None
    if connection.vendor == "postgresql":  # the seq, the row and its outbox in one statement
        logged, deliveries = _log_many_in_one_statement(type, [(project_id, data)], now, username)
        if not logged:
            raise Project.DoesNotExist(f"project {project_id} is gone")
        [event] = logged
    else:
        event = Event.objects.create(
            project_id=project_id,
            seq=_next_seq(project_id),
            type=type,
            occurred_at=now,
            actor=username,
            data=data,
        )
        deliveries = webhooks.deliveries_log([event])  # the outbox, in the event's transaction
    projects = [project_id] if moved_from in (None, project_id) else [project_id, moved_from]
    versions = cache_versions(type, *projects)
    effects.on_commit(
        events=[event], versions=versions, users_gone=readers_changed, deliveries=deliveries
    )
    return event


def publish_many(
    *, type: EventType, items: list[tuple[int, dict[str, Any]]], actor: AbstractBaseUser | None
) -> list[Event]:
    """publish() for one event in each of many projects, in a number of queries that does not
    grow with them: the projects' locks (in id order), their next seqs, one insert."""
    if not connection.in_atomic_block:
        raise RuntimeError("publish_many() must run inside the write's transaction")
    project_ids = [project_id for project_id, _ in items]
    if len(set(project_ids)) != len(project_ids):
        raise ValueError("publish_many() takes one event per project")
    now = timezone.now()
    username = actor.get_username() if actor else None
    if connection.vendor == "postgresql":
        events, deliveries = _log_many_in_one_statement(type, items, now, username)
    else:
        events = _log_many(type, items, now, username)
        deliveries = webhooks.deliveries_log(events)
    versions = cache_versions(type, *(event.project_id for event in events))
    effects.on_commit(events=events, versions=versions, deliveries=deliveries)
    return events


# The outbox rows of the events in a CTE `logged` (their id, project_id), all of type %(type)s,
# logged at %(now)s: one per active webhook of the event's project that asks for the type (the
# same rows as webhooks.deliveries_log makes). scheduled.summaries logs its events with it too.
OUTBOX = """
        INSERT INTO common_webhookdelivery (webhook_id, event_id, attempt, status, error,
            created_at, due_at, queued_at, claimed_by)
        SELECT webhook.id, logged.id, 1, 'pending', '', %(now)s, %(now)s, %(now)s, ''
        FROM logged JOIN common_webhook AS webhook ON webhook.project_id = logged.project_id
        WHERE webhook.active AND (webhook.events @> '["*"]'::jsonb
            OR webhook.events @> jsonb_build_array(%(type)s::text))
        RETURNING id
"""

# PostgreSQL: the items go in as one JSON document; the projects are locked in id order and their
# seqs taken, the events inserted, and the outbox rows of the webhooks that want them
# (common.domain.webhooks) inserted, all in one statement. A project deleted meanwhile is left
# out: it has nothing to announce.
_LOG_MANY = f"""
    WITH item AS (
        SELECT * FROM jsonb_to_recordset(%(items)s::jsonb) AS item(project bigint, data jsonb)
    ), seq AS (
        UPDATE common_project SET event_seq = event_seq + 1 WHERE id IN (
            SELECT id FROM common_project WHERE id = ANY(%(projects)s::bigint[])
            ORDER BY id FOR NO KEY UPDATE
        )
        RETURNING id, event_seq
    ), logged AS (
        INSERT INTO common_event (id, project_id, seq, type, occurred_at, actor, data)
        SELECT gen_random_uuid(), seq.id, seq.event_seq, %(type)s, %(now)s, %(actor)s, item.data
        FROM item JOIN seq ON seq.id = item.project
        RETURNING id, project_id, seq
    ), outbox AS ({OUTBOX.strip()})
    SELECT id, project_id, seq, (SELECT array_agg(id) FROM outbox) FROM logged
"""  # noqa: S608 (the text is constants and placeholders)


def _log_many_in_one_statement(type, items, now, actor) -> tuple[list[Event], list[int]]:
    """The events, and the ids of the webhook deliveries logged with them."""
    payload = [{"project": project_id, "data": data} for project_id, data in items]
    params = {"items": json.dumps(payload), "type": type, "now": now, "actor": actor}
    params["projects"] = [project_id for project_id, _ in items]
    with connection.cursor() as cursor:
        cursor.execute(_LOG_MANY, params)
        rows = cursor.fetchall()
    logged = {project_id: (event_id, seq) for event_id, project_id, seq, _ in rows}
    deliveries = list(rows[0][3] or []) if rows else []
    events = [
        Event(
            id=logged[project_id][0],
            project_id=project_id,
            seq=logged[project_id][1],
            type=type,
            occurred_at=now,
            actor=actor,
            data=data,
        )
        for project_id, data in items
        if project_id in logged
    ]
    return events, deliveries


def _log_many(type, items, now, actor) -> list[Event]:
    """The same on other databases (SQLite in the local mode), with the ORM."""
    projects = Project.objects.filter(pk__in=[project_id for project_id, _ in items])
    list(projects.order_by("pk").select_for_update(no_key=True).values_list("pk"))
    projects.update(event_seq=F("event_seq") + 1)
    seqs = dict(projects.values_list("pk", "event_seq"))
    return Event.objects.bulk_create(
        Event(
            project_id=project_id,
            seq=seqs[project_id],
            type=type,
            occurred_at=now,
            actor=actor,
            data=data,
        )
        for project_id, data in items
        if project_id in seqs  # a project deleted meanwhile has nothing to announce
    )


def envelope(event: Event) -> dict[str, Any]:
    """The event as clients receive it (CONTRACT section 2): the websocket, the activity feed
    and webhooks alike, encoded by common.infra.event_push.encode. `data`'s keys are sorted, so
    an event fresh from its write and the same event read back from the log (PostgreSQL's jsonb
    keeps keys in an order of its own) encode to the same bytes."""
    return {
        "type": event.type,
        "project": event.project_id,
        "seq": event.seq,
        "id": str(event.id),
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "actor": event.actor,
        "data": _sorted(event.data),
    }


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def event_list_after(*, project_id: int, seq: int, limit: int = 500) -> list[Event]:
    """The project's logged events after `seq`, oldest first, at most `limit` of them."""
    return list(Event.objects.filter(project_id=project_id, seq__gt=seq).order_by("seq")[:limit])


def event_oldest_kept(*, project_id: int) -> int:
    """The oldest seq of the project still in the log (its next seq when none is)."""
    oldest = Event.objects.filter(project_id=project_id).order_by("seq").values("seq").first()
    if oldest is not None:
        return oldest["seq"]
    latest = Project.objects.filter(pk=project_id).values_list("event_seq", flat=True).first()
    return (latest or 0) + 1


def event_prune(*, now: datetime | None = None) -> int:
    """Delete events older than the retention period, and the webhook delivery attempts of that
    age with them; return how many events went."""
    cutoff = (now or timezone.now()) - retention()
    deleted, _ = Event.objects.filter(occurred_at__lt=cutoff).delete()
    WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(status="pending").delete()
    return deleted


def _next_seq(project_id: int) -> int:
    # The UPDATE takes the project's row lock until commit: concurrent writers wait their turn.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE common_project SET event_seq = event_seq + 1 WHERE id = %s RETURNING event_seq",
            [project_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise Project.DoesNotExist(f"project {project_id} is gone")
    return row[0]
