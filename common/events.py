"""Events: the one publish path from a committed write to /ws/notifications/.

`publish` appends the event to the log (common.models.Event) inside the write's transaction, with
the project's next `seq` taken under the project's row lock, so `seq` order is commit order and a
rolled-back write leaves no event. After commit the event goes to the channel layer; if that fails
the event is still in the log, and clients get it when they resume or at the next gap.
"""

import asyncio
import json
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from common.models import Event, Project

logger = logging.getLogger(__name__)

ALL_PROJECTS_GROUP = "projects.all"
RETENTION = timedelta(days=7)
SEND_TIMEOUT_SECONDS = 2


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


def project_group(project_id: int) -> str:
    """The channel-layer group of one project's events."""
    return f"project.{project_id}"


def publish(
    *, type: EventType, project_id: int, data: dict[str, Any], actor: AbstractBaseUser | None
) -> Event:
    """Log the event in the current transaction; send it to the channel layer after commit."""
    if not connection.in_atomic_block:
        raise RuntimeError("publish() must run inside the write's transaction")
    event = Event.objects.create(
        project_id=project_id,
        seq=_next_seq(project_id),
        type=type,
        occurred_at=timezone.now(),
        actor=actor.get_username() if actor else None,
        data=data,
    )
    transaction.on_commit(lambda: _send(event), robust=True)
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
        events = _log_many_in_one_statement(type, items, now, username)
    else:
        events = _log_many(type, items, now, username)
    transaction.on_commit(lambda: _send_all(events), robust=True)
    return events


# PostgreSQL: the items go in as one JSON document; the projects are locked in id order and their
# seqs taken and the events inserted in one statement. A project deleted meanwhile is left out:
# it has nothing to announce.
_LOG_MANY = """
    WITH item AS (
        SELECT * FROM jsonb_to_recordset(%(items)s::jsonb) AS item(project bigint, data jsonb)
    ), seq AS (
        UPDATE common_project SET event_seq = event_seq + 1 WHERE id IN (
            SELECT id FROM common_project WHERE id IN (SELECT project FROM item)
            ORDER BY id FOR NO KEY UPDATE
        )
        RETURNING id, event_seq
    )
    INSERT INTO common_event (id, project_id, seq, type, occurred_at, actor, data)
    SELECT gen_random_uuid(), seq.id, seq.event_seq, %(type)s, %(now)s, %(actor)s, item.data
    FROM item JOIN seq ON seq.id = item.project
    RETURNING id, project_id, seq
"""


def _log_many_in_one_statement(type, items, now, actor) -> list[Event]:
    payload = [{"project": project_id, "data": data} for project_id, data in items]
    params = {"items": json.dumps(payload), "type": type, "now": now, "actor": actor}
    with connection.cursor() as cursor:
        cursor.execute(_LOG_MANY, params)
        logged = {project_id: (event_id, seq) for event_id, project_id, seq in cursor.fetchall()}
    return [
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
    """The event as clients receive it (CONTRACT section 2)."""
    return {
        "type": event.type,
        "project": event.project_id,
        "seq": event.seq,
        "id": str(event.id),
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "actor": event.actor,
        "data": event.data,
    }


def event_list_after(*, project_id: int, seq: int, limit: int = 500) -> list[Event]:
    """The project's logged events after `seq`, oldest first, at most `limit` of them."""
    return list(Event.objects.filter(project_id=project_id, seq__gt=seq).order_by("seq")[:limit])


def event_prune(*, now: datetime | None = None) -> int:
    """Delete events older than the retention period; return how many went."""
    cutoff = (now or timezone.now()) - RETENTION
    deleted, _ = Event.objects.filter(occurred_at__lt=cutoff).delete()
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


def _send(event: Event) -> None:
    _send_all([event])


def _send_all(events: list[Event]) -> None:
    from channels.layers import get_channel_layer
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from redis.exceptions import RedisError

    layer = get_channel_layer()
    if layer is None or not events:
        return
    messages = [_message(event) for event in events]
    try:
        if isinstance(layer, RedisPubSubChannelLayer):
            _publish_pipelined(layer, messages)
        else:  # the in-process layer of the local mode
            from asgiref.sync import async_to_sync

            async_to_sync(_group_send_each)(layer, messages)
    except (RedisError, OSError) as exc:
        logger.warning("%d event(s) not pushed live (they stay in the log): %s", len(events), exc)


def _message(event: Event) -> dict[str, Any]:
    return {
        "type": "event.notify",
        "project": event.project_id,
        "seq": event.seq,
        # Encoded once here, not once per connected client.
        "text": json.dumps(envelope(event), separators=(",", ":")),
    }


def _groups(message: dict[str, Any]) -> tuple[str, str]:
    return project_group(message["project"]), ALL_PROJECTS_GROUP


async def _group_send_each(layer, messages: list[dict[str, Any]]) -> None:
    # Bounded: a slow layer delays the write's answer by at most this much.
    async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
        for message in messages:
            for group in _groups(message):
                await layer.group_send(group, message)


# What channels_redis.pubsub's group_send does (one PUBLISH of the serialized message to the
# group's channel), for a whole batch of messages in one pipeline: one round trip per
# PUBLISH_BATCH messages instead of one per message and group.
PUBLISH_BATCH = 1000
_clients: dict[str, Any] = {}  # Redis clients by URL, each with its connection pool, per process


def _publish_pipelined(layer, messages: list[dict[str, Any]]) -> None:
    from django.conf import settings

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    [host] = config["hosts"]  # one Redis: no sharding of channels to mirror
    client = _redis_client(host["address"])
    prefix = config.get("prefix", "asgi")
    for start in range(0, len(messages), PUBLISH_BATCH):
        with client.pipeline(transaction=False) as pipeline:
            for message in messages[start : start + PUBLISH_BATCH]:
                data = layer.serialize(message)
                for group in _groups(message):
                    pipeline.publish(f"{prefix}__group__{group}", data)  # channels_redis' name
            pipeline.execute()


def _redis_client(url: str):
    if url not in _clients:
        import redis

        # Bounded: a slow Redis delays the write's answer by at most about this much.
        _clients[url] = redis.Redis.from_url(
            url, socket_connect_timeout=SEND_TIMEOUT_SECONDS, socket_timeout=SEND_TIMEOUT_SECONDS
        )
    return _clients[url]
