"""The list cache: rendered pages of /projects/ and /tasks/, invalidated by version, never stale.

A page's name embeds the current versions of what it shows; a committed write bumps those
versions (infra.cache.invalidation, called by domain.effects), and the next read builds a new
page under a new name (common.infra.cache.pages); old pages are never deleted, only left to their
TTL. Cached pages are answered in front of Django (common.infra.cache.frontend). Redis errors never
fail a request: the request is served from the database and the cache is skipped for a few
seconds (common.infra.cache.store); a bump Redis did not take is remembered and retried
(common.infra.cache.versions).
"""

from common.infra.cache.invalidation import cache_forget_user, cache_invalidate, cache_redis_url
from common.infra.cache.pages import CachedListMixin, cached_page, page_ended, page_start
from common.infra.cache.store import CacheDown
from common.infra.cache.store import store as _store


def cache_ping() -> None:
    """Raise when the cache does not answer (for /readyz)."""
    try:
        _store().ping()
    except CacheDown as exc:
        raise ConnectionError(f"cache: {exc.__cause__ or 'Redis restarted'}") from exc


__all__ = [
    "CachedListMixin",
    "cache_forget_user",
    "cache_invalidate",
    "cache_ping",
    "cache_redis_url",
    "cached_page",
    "page_ended",
    "page_start",
]
