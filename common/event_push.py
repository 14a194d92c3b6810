"""The push of committed events to the realtime service: best effort, the event log is the truth.

Each event is encoded once, as its envelope's JSON text, and published once, on the channel of
its project (`{prefix}:events:project:{id}`, names of our own), with redis-py's public API: one
pipeline per batch, one client (and connection pool) per Redis URL per process. The realtime
process holds one subscription to them all (realtime.fanout). Without Redis (the local mode) the
same text goes to the listeners of this process.
"""

import json
import logging
import threading
from collections.abc import Callable, Sequence

import redis
from django.conf import settings
from redis.exceptions import RedisError

from common.models import Event

logger = logging.getLogger("common.events")

SEND_TIMEOUT_SECONDS = 2  # a slow Redis delays the write's answer by at most about this much
PUBLISH_BATCH = 1000  # PUBLISHes per round trip

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
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
    from common.events import envelope

    push_encoded([(event.project_id, encode(envelope(event))) for event in events])


def push_encoded(messages: Sequence[tuple[int, str]]) -> None:
    """push() for events already encoded: (project id, envelope text) each."""
    if not messages:
        return
    if not settings.CHANNEL_REDIS_URL:
        for listener in list(_local_listeners):
            for project_id, text in messages:
                listener(project_id, text)
        return
    try:
        _publish(redis_client(settings.CHANNEL_REDIS_URL), list(messages))
    except (RedisError, OSError) as exc:
        logger.warning("%d event(s) not pushed live (they stay in the log): %s", len(messages), exc)


def _publish(client: redis.Redis, messages: list[tuple[int, str]]) -> None:
    for start in range(0, len(messages), PUBLISH_BATCH):
        with client.pipeline(transaction=False) as pipeline:
            for project_id, text in messages[start : start + PUBLISH_BATCH]:
                pipeline.publish(event_channel(project_id), text)
            pipeline.execute()


def redis_client(url: str) -> redis.Redis:
    """This process's client of the Redis at `url` (thread-safe: redis-py pools connections)."""
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.setdefault(
                url,
                redis.Redis.from_url(
                    url,
                    socket_connect_timeout=SEND_TIMEOUT_SECONDS,
                    socket_timeout=SEND_TIMEOUT_SECONDS,
                ),
            )
    return client


def listen_in_process(listener: Callable[[int, str], None]) -> Callable[[], None]:
    """Without Redis: call `listener(project_id, text)` for each pushed event; returns the undo.

    The listener runs on the pushing thread: it must only hand the text on (to its event loop).
    """
    _local_listeners.append(listener)
    return lambda: _local_listeners.remove(listener)
