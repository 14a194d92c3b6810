"""The one place a write's effects leave from, together, once its transaction commits.

A service's events say what changed; from them come the list-cache versions to bump (the table
beside the event types, common.events.CACHE_VERSIONS) and the push to the realtime service.
Changes to users, which have no events, name their effects here too (common.services' `user_*`).
Nothing leaves for a write that rolls back: everything waits for `transaction.on_commit`.
"""

from collections.abc import Iterable, Sequence
from functools import partial

from django.db import transaction

from common.cache import cache_forget_user, cache_invalidate
from common.event_push import push, push_encoded
from common.models import Event


def on_commit(
    *,
    events: Sequence[Event] = (),
    versions: Iterable[str] = (),
    users_gone: Iterable[object] = (),
    messages: Sequence[tuple[int, str]] = (),
) -> None:
    """After the current transaction commits: bump `versions`, forget `users_gone` on the
    cache's hit path, push `events` live. The cache goes first, so that a client acting on an
    event reads the write. `messages`: events logged by SQL of their own (the summaries'),
    as (project id, envelope text), pushed with them."""
    leave = partial(
        _leave, list(events), tuple(dict.fromkeys(versions)), list(users_gone), list(messages)
    )
    transaction.on_commit(leave, robust=True)


def _leave(
    events: list[Event],
    versions: tuple[str, ...],
    users_gone: list[object],
    messages: list[tuple[int, str]],
) -> None:
    if versions:
        cache_invalidate(versions)
    for user_id in users_gone:
        cache_forget_user(user_id)
    if events:
        push(events)
    if messages:
        push_encoded(messages)
