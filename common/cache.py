"""The list cache: rendered pages of /projects/ and /tasks/, invalidated by version, never stale.

A page's key embeds the current versions of what it shows; a committed write bumps those versions
(after commit, from model signals, so the admin and the shell invalidate too), and the next read
builds a new page under a new key. Old pages are never deleted, only left to their TTL.

Versions: `projects` (project lists), `tasks` (every task list), `tasks:project:ID` (task lists
filtered by that project) and `users` (every list: they show usernames). Redis errors never fail
a request: they are logged, the request is served from the database, and the cache is skipped
for a few seconds.
"""

import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Callable

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError
from rest_framework.renderers import JSONRenderer

logger = logging.getLogger(__name__)

PAGE_TTL_SECONDS = 300
BUILD_LOCK_SECONDS = 5
WAIT_FOR_BUILDER_SECONDS = 2.0
SKIP_AFTER_ERROR_SECONDS = 5.0
ACTIVE_USER_SECONDS = 300  # how long the hit path trusts that a token's user is still active

_skip_until = 0.0  # monotonic time before which the cache is not asked (after an error)


class CacheDown(Exception):
    """Redis did not answer; the caller serves from the database."""


def page_versions(resource: str, project: str | None) -> list[str]:
    """The version names a list page of `resource` depends on."""
    if resource == "tasks" and project and project.isascii() and project.isdigit():
        return [f"tasks:project:{int(project)}", "users"]
    return [resource, "users"]


def page_key(resource: str, versions: dict[str, int], base_url: str, query: str) -> str:
    """The cache key of one page: resource, versions, and everything that changes its bytes.

    `query` is the request's query string re-encoded in its own order: repeated parameters
    mean their last value, so their order is part of what was asked.
    """
    digest = hashlib.blake2b(f"{base_url}?{query}".encode(), digest_size=16).hexdigest()
    stamp = ".".join(str(versions[name]) for name in sorted(versions))
    return f"page:{resource}:{stamp}:{digest}"


def active_user_key(user_id) -> str:
    """Present while the hit path may serve this user (set by Django after it authenticated)."""
    return f"user-active:{user_id}"


def request_page_key(request: HttpRequest, resource: str) -> str:
    names = page_versions(resource, request.GET.get("project"))
    base_url = request.build_absolute_uri(request.path)
    return page_key(resource, _versions(names), base_url, request.GET.urlencode())


def cached_page(
    request: HttpRequest, resource: str, build: Callable[[], bytes]
) -> tuple[bytes, bool]:
    """The page's bytes and whether they came from the cache.

    A miss builds under a short lock, so a burst of misses on one key costs one query.
    """
    try:
        key = request_page_key(request, resource)
        if (page := _call(cache.get, key)) is not None:
            return page, True
        building_elsewhere = not _call(cache.add, f"lock:{key}", 1, BUILD_LOCK_SECONDS)
        if building_elsewhere and (page := _wait_for(key)) is not None:
            return page, True
        try:
            page = build()  # may raise: a bad filter is a 400, never cached
            _call(cache.set, key, page, _ttl())
        finally:
            _call(cache.delete, f"lock:{key}")
        return page, False
    except CacheDown:
        return build(), False


class CachedListMixin:
    """For list views: answer GET from the cache, with `X-Cache: hit|miss`."""

    cache_resource: str

    def list(self, request, *args, **kwargs):
        page, hit = cached_page(request, self.cache_resource, lambda: self.render_list(request))
        _remember_active(request.user.pk)
        response = HttpResponse(page, content_type="application/json")
        response["X-Cache"] = "hit" if hit else "miss"
        return response

    def render_list(self, request) -> bytes:
        """The page's bytes on a miss: DRF's list, rendered (views may do it faster)."""
        return JSONRenderer().render(super().list(request).data)


def cache_version_bump(*names: str) -> None:
    """Invalidate every page that depends on `names`, once the current transaction commits."""
    transaction.on_commit(lambda: _bump(names), robust=True)


def cache_ping() -> None:
    """Raise when the cache does not answer (for /readyz)."""
    try:
        cache.get("readyz")
    except (RedisError, OSError) as exc:
        raise ConnectionError(f"cache: {exc}") from exc


def _remember_active(user_id) -> None:
    with contextlib.suppress(CacheDown):
        _call(cache.set, active_user_key(user_id), 1, ACTIVE_USER_SECONDS)


def _versions(names: list[str]) -> dict[str, int]:
    found = _call(cache.get_many, names)
    for name in names:
        if name not in found:
            found[name] = _start_version(name)
    return found


def _start_version(name: str) -> int:
    # A version key that vanished (eviction, flush) restarts above any value it ever had, so it
    # can never point back at an old page.
    _call(cache.add, name, time.time_ns() // 1000, None)
    return _call(cache.get, name) or 0


def _bump(names: tuple[str, ...]) -> None:
    backend = caches["default"]
    if not isinstance(backend, RedisCache):  # the in-process cache of the local mode
        for name in names:
            _bump_one(backend, name)
        return
    # Every name in one round trip, atomically (MULTI/EXEC): a version never set (or evicted)
    # first starts above any value it ever had, as in _start_version; then each goes up by one.
    # The raw client is Django's own (RedisCache._cache), with its pool and timeouts.
    start = time.time_ns() // 1000
    keys = [backend.make_and_validate_key(name) for name in dict.fromkeys(names)]
    try:
        with backend._cache.get_client(write=True).pipeline(transaction=True) as pipeline:
            for key in keys:
                pipeline.set(key, start, nx=True)
                pipeline.incr(key)
            pipeline.execute()
    except (RedisError, OSError) as exc:
        # Pages keyed on the old versions stay until their TTL: say so loudly.
        logger.error("cache: could not bump %s (pages may be stale until TTL): %s", names, exc)


def _bump_one(backend, name: str) -> None:
    try:
        backend.incr(name)
    except ValueError:  # never set: any new value is fresh
        backend.add(name, time.time_ns() // 1000, None)


def _wait_for(key: str) -> bytes | None:
    deadline = time.monotonic() + WAIT_FOR_BUILDER_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if (page := _call(cache.get, key)) is not None:
            return page
    return None


def _ttl() -> int:
    return int(PAGE_TTL_SECONDS * random.uniform(0.9, 1.1))


def cache_skipped() -> bool:
    """True for a few seconds after the cache failed: readers go straight to the database."""
    return time.monotonic() < _skip_until


def cache_failed(exc: Exception) -> None:
    global _skip_until
    _skip_until = time.monotonic() + SKIP_AFTER_ERROR_SECONDS
    logger.warning("cache unavailable, serving from the database: %s", exc)


def _call(method, *args):
    if cache_skipped():
        raise CacheDown
    try:
        return method(*args)
    except (RedisError, OSError) as exc:
        cache_failed(exc)
        raise CacheDown from exc


# -- invalidation: every committed write of a listed model, whatever path it took ----------------


def _project_saved(sender, instance, **kwargs) -> None:
    cache_version_bump("projects")


def _project_deleted(sender, instance, **kwargs) -> None:
    cache_version_bump("projects", "tasks", f"tasks:project:{instance.pk}")


def _task_saved(sender, instance, **kwargs) -> None:
    projects = {instance.project_id, getattr(instance, "loaded_project_id", instance.project_id)}
    cache_version_bump("tasks", *(f"tasks:project:{pk}" for pk in projects))


def _task_deleted(sender, instance, origin=None, **kwargs) -> None:
    from common.models import Project

    if isinstance(origin, Project):
        return  # a project's cascade: the project's own bump covers its tasks
    cache_version_bump("tasks", f"tasks:project:{instance.project_id}")


def _comment_saved(sender, instance, **kwargs) -> None:
    cache_version_bump("tasks", f"tasks:project:{instance.task.project_id}")  # comment_count


def _user_changed(sender, instance, **kwargs) -> None:
    # A rename shows in every list; a deactivated or deleted user loses the hit path at once.
    cache_version_bump("users")
    transaction.on_commit(lambda: _forget_active(instance.pk), robust=True)


def _forget_active(user_id) -> None:
    try:
        cache.delete(active_user_key(user_id))
    except (RedisError, OSError) as exc:
        logger.error(
            "cache: could not forget user %s (lapses in %ss): %s", user_id, ACTIVE_USER_SECONDS, exc
        )


def connect_invalidation() -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save

    from common.models import Comment, Project, Task

    user = get_user_model()
    post_save.connect(_user_changed, sender=user, dispatch_uid="cache.user_saved")
    post_delete.connect(_user_changed, sender=user, dispatch_uid="cache.user_deleted")
    post_save.connect(_project_saved, sender=Project, dispatch_uid="cache.project_saved")
    post_delete.connect(_project_deleted, sender=Project, dispatch_uid="cache.project_deleted")
    post_save.connect(_task_saved, sender=Task, dispatch_uid="cache.task_saved")
    post_delete.connect(_task_deleted, sender=Task, dispatch_uid="cache.task_deleted")
    post_save.connect(_comment_saved, sender=Comment, dispatch_uid="cache.comment_saved")
