"""The push of committed events to the realtime service: best effort, the event log is the truth.

Each event is encoded once, as its envelope's JSON text, and published once, on the channel of
its project (`{prefix}:events:project:{id}`, names of our own), with redis-py's public API: one
pipeline per batch, on the process's one client of that Redis (common.infra.redis_clients).
The realtime process holds one subscription to them all (realtime.fanout). Without Redis (the
local mode) the same text goes to the listeners of this process.
"""

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from django.conf import settings

from common.domain.models import Event
from common.infra.redis_clients import shared_redis

if TYPE_CHECKING:  # redis is imported by the first push, not at every function's start
    import redis

logger = logging.getLogger("common.domain.events")

PUBLISH_BATCH = 1000  # PUBLISHes per round trip
_local_listeners: list[Callable[[int, str], None]] = []


def event_channel(project_id: int) -> str:
    """The pub/sub channel of one project's events."""
    return f"{settings.REDIS_PREFIX}:events:project:{project_id}"


def event_channel_pattern() -> str:
    """The pattern every project's channel matches."""
    return f"{settings.REDIS_PREFIX}:events:project:*"


def project_of_channel(channel: str) -> int:
    return int(channel.rpartition(":")[2])


def encode(envelope: dict) -> str:
    return json.dumps(envelope, separators=(",", ":"))


def push(events: Sequence[Event]) -> None:
    """Hand committed events to the realtime service; log (never raise) when it cannot be done."""
    push_messages(messages(events))


def messages(events: Sequence[Event]) -> list[tuple[int, str]]:
    """(project id, text) of each event: what push_messages sends."""
    from common.domain.events import envelope

    return [(event.project_id, encode(envelope(event))) for event in events]


def redis_messages(messages: Sequence[tuple[int, str]]) -> list[tuple[str, str]]:
    """(channel, text) of each message, for a caller that PUBLISHes them on CHANNEL_REDIS_URL
    itself (common.domain.effects, in the list cache's round trip when it is the same Redis)."""
    return [(event_channel(project_id), text) for project_id, text in messages]


def push_messages(messages: Sequence[tuple[int, str]]) -> None:
    if not messages:
        return
    if not settings.CHANNEL_REDIS_URL:
        for listener in list(_local_listeners):
            for project_id, text in messages:
                listener(project_id, text)
        return
    shared = shared_redis(settings.CHANNEL_REDIS_URL)
    try:  # a slow Redis delays the write's answer by at most its timeout (0.5 s) a batch
        _publish(shared.client, redis_messages(messages))
    except shared.errors as exc:
        logger.warning("%d event(s) not pushed live (they stay in the log): %s", len(messages), exc)


def _publish(client: "redis.Redis", messages: list[tuple[str, str]]) -> None:
    for start in range(0, len(messages), PUBLISH_BATCH):
        with client.pipeline(transaction=False) as pipeline:
            for channel, text in messages[start : start + PUBLISH_BATCH]:
                pipeline.publish(channel, text)
            pipeline.execute()


def listen_in_process(listener: Callable[[int, str], None]) -> Callable[[], None]:
    """Without Redis: call `listener(project_id, text)` for each pushed event; returns the undo.

    The listener runs on the pushing thread: it must only hand the text on (to its event loop).
    """
    _local_listeners.append(listener)
    return lambda: _local_listeners.remove(listener)
