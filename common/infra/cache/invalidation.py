"""Invalidation: what a committed write changes, made stale in the cache at once.

Versions: `projects` (project lists), `tasks` (every task list), `tasks:project:ID` (task lists
filtered by that project) and `users` (every list: they show usernames). Called only after
commit, by common.domain.effects, which derives the names from the write's events.
"""

import logging
from collections.abc import Iterable

from common.infra.cache.keys import active_user_name
from common.infra.cache.pages import ACTIVE_USER_SECONDS
from common.infra.cache.store import CacheDown, Messages, RedisStore, store
from common.infra.cache.versions import bump

logger = logging.getLogger("common.infra.cache")


def cache_invalidate(names: Iterable[str], publish: Messages = ()) -> bool:
    """Invalidate every page that depends on `names`, now (a bump Redis refuses is retried).

    `publish`: (channel, text) messages for the cache's own Redis (cache_redis_url()), PUBLISHed
    right after the bump in the same round trip; True when Redis took them, else False (they are
    not retried: the caller sends them its own way)."""
    return bump(tuple(names), publish)


def cache_redis_url() -> str | None:
    """The URL of the Redis the cache keeps its versions on; None without Redis."""
    target = store()
    return target.url if isinstance(target, RedisStore) else None


def cache_forget_user(user_id: object) -> None:
    """Stop serving this user from the hit path in front of Django until they authenticate again."""
    try:
        store().delete(active_user_name(user_id))
    except CacheDown:
        logger.error(
            "cache: could not forget user %s (lapses in %ss)", user_id, ACTIVE_USER_SECONDS
        )
