"""The one place a write's effects leave from, together, once its transaction commits.

A service's events say what changed; from them come the list-cache versions to bump (the table
beside the event types, common.domain.events.CACHE_VERSIONS), the push to the realtime service,
and the webhook deliveries made in the transaction (common.domain.webhooks' outbox), handed to
the workers (scheduled.webhooks; a delivery that cannot be handed over waits for the relay).
Changes to users, which have no events, name their effects here too (domain.services' `user_*`).
Nothing leaves for a write that rolls back: everything waits for `transaction.on_commit`.
"""

from collections.abc import Iterable, Sequence
from functools import partial

from django.conf import settings
from django.db import transaction

from common.domain.models import Event
from common.infra.cache import cache_forget_user, cache_invalidate, cache_redis_url
from common.infra.event_push import messages, push_messages, redis_messages


def on_commit(
    *,
    events: Sequence[Event] = (),
    versions: Iterable[str] = (),
    users_gone: Iterable[object] = (),
    messages: Sequence[tuple[int, str]] = (),
    deliveries: Sequence[int] = (),
    deliveries_countdown: float | None = None,
) -> None:
    """After the current transaction commits: bump `versions`, forget `users_gone` on the
    cache's hit path, push `events` live, queue the webhook `deliveries`. The cache goes first,
    so that a client acting on an event reads the write. `messages`: events logged by SQL of
    their own (the summaries'), as (project id, envelope text), pushed with them. A retry's
    delivery waits `deliveries_countdown` seconds in the broker."""
    leave = partial(
        _leave,
        list(events),
        tuple(dict.fromkeys(versions)),
        list(users_gone),
        list(messages),
        list(deliveries),
        deliveries_countdown,
    )
    transaction.on_commit(leave, robust=True)


def _leave(
    events: list[Event],
    versions: tuple[str, ...],
    users_gone: list[object],
    encoded: list[tuple[int, str]],
    deliveries: list[int],
    countdown: float | None,
) -> None:
    live = [*messages(events), *encoded]
    # One round trip when the events' channels are on the cache's Redis: the bump, then the
    # PUBLISHes, in one transaction. Not when users go: the hit path forgets them before.
    carry = bool(live and versions and not users_gone)
    carry = carry and cache_redis_url() == settings.CHANNEL_REDIS_URL
    if versions and cache_invalidate(versions, redis_messages(live) if carry else ()) and carry:
        live = []  # sent
    for user_id in users_gone:
        cache_forget_user(user_id)
    push_messages(live)
    if deliveries:
        from scheduled.webhooks import deliveries_queue  # Celery's import only where it is used

        deliveries_queue(deliveries, countdown=countdown)
