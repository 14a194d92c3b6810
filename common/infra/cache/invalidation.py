"""Invalidation: what a committed write changes, made stale in the cache at once.

Versions: `projects` (project lists), `tasks` (every task list), `tasks:project:ID` (task lists
filtered by that project) and `users` (every list: they show usernames). Called only after
commit, by common.domain.effects, which derives the names from the write's events.
"""

import logging
from collections.abc import Iterable

from common.infra.cache.keys import active_user_name
from common.infra.cache.pages import ACTIVE_USER_SECONDS
from common.infra.cache.store import CacheDown, store
from common.infra.cache.versions import bump

logger = logging.getLogger("common.infra.cache")


def cache_invalidate(names: Iterable[str]) -> None:
    """Invalidate every page that depends on `names`, now (a bump Redis refuses is retried)."""
    bump(tuple(names))


def cache_forget_user(user_id: object) -> None:
    """Stop serving this user from the hit path in front of Django until they authenticate again."""
    try:
        store().delete(active_user_name(user_id))
    except CacheDown:
        logger.error(
            "cache: could not forget user %s (lapses in %ss)", user_id, ACTIVE_USER_SECONDS
        )
