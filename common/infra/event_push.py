"""The push of committed events to the realtime service: best effort, the event log is the truth.

Each event is encoded once, as its envelope's JSON text, and published once, with redis-py's
public API: one pipeline per batch, on the process's one client of that Redis
(common.infra.redis_clients). A write's one event goes on the channel of its project
(`{prefix}:events:project:{id}`, names of our own); a push of many events (a summaries run's
10,000) goes on `{prefix}:events:batch`, up to PUBLISH_BATCH of them a message, one envelope a
line (encode() writes no line break), because 10,000 PUBLISHes cost Redis and the job 100 ms and
more on a busy machine where ten cost 10 ms. The realtime process holds one subscription to
them all (realtime.fanout), and hands each event on alike. Without Redis (the local mode) the
same text goes to the listeners of this process.
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

PUBLISH_BATCH = 1000  # events per message of the batch channel
_local_listeners: list[Callable[[int, str], None]] = []


def event_channel(project_id: int) -> str:
    """The pub/sub channel of one project's events."""
    return f"{settings.REDIS_PREFIX}:events:project:{project_id}"


def event_channel_pattern() -> str:
    """The pattern every project's channel matches."""
    return f"{settings.REDIS_PREFIX}:events:project:*"


def event_batch_channel() -> str:
    """The channel of pushes of many events: each message their texts, one a line."""
    return f"{settings.REDIS_PREFIX}:events:batch"


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
    """The (channel, text) PUBLISHes that push these messages, in their order: one event on its
    project's channel, many on the batch channel; for push_messages, and for a caller that
    PUBLISHes them on CHANNEL_REDIS_URL itself (common.domain.effects, in the list cache's round
    trip when it is the same Redis)."""
    if len(messages) == 1:
        [(project_id, text)] = messages
        return [(event_channel(project_id), text)]
    texts = [text for _, text in messages]
    return [
        (event_batch_channel(), "\n".join(texts[start : start + PUBLISH_BATCH]))
        for start in range(0, len(texts), PUBLISH_BATCH)
    ]


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
    with client.pipeline(transaction=False) as pipeline:
        for channel, text in messages:
            pipeline.publish(channel, text)
        pipeline.execute()


def listen_in_process(listener: Callable[[int, str], None]) -> Callable[[], None]:
    """Without Redis: call `listener(project_id, text)` for each pushed event; returns the undo.

    The listener runs on the pushing thread: it must only hand the text on (to its event loop).
    """
    _local_listeners.append(listener)
    return lambda: _local_listeners.remove(listener)
