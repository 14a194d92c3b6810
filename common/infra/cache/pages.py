"""The miss path: a list page built by Django, stored for the hit path, with its byte format.

A stored page is `<built-at, microseconds> <its ETag>\\n<the page's JSON>`: raw bytes, nothing
to decode but a number; the tag (common.api.conditional.page_tag) lets the hit path answer 304
without hashing the page. A page is built from the canonical query (common.infra.cache.keys), so
parameters the list does not read neither make pages of their own nor show in the page's links.
A page over
CACHE_PAGE_MAX_BYTES is served but not stored, and a request that fails stores nothing.
"""

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from common.api.conditional import none_match, not_modified, page_tag
from common.infra.cache.keys import (
    active_user_name,
    canonical_query,
    count_name,
    lock_name,
    memberships_value,
    page_end_name,
    page_name,
    page_versions,
    reader_audience,
    register_list,
    vouch_value,
)
from common.infra.cache.store import CacheDown, Command, cache_skipped, now_us, store
from common.infra.cache.versions import (
    page_is_fresh,
    pending_bumps,
    read_versions,
    retry_pending,
    start_versions,
)

PAGE_TTL_SECONDS = 300
BUILD_LOCK_SECONDS = 5
WAIT_FOR_BUILDER_SECONDS = 2.0
# The scope key under which the hit path hands Django the versions it read for a request it
# did not answer: read before Django reads the database, they are as good as its own read.
HANDED_VERSIONS = "taskwire.list_cache.versions"
# How long the hit path trusts that a token's user is still active with the same password, at
# most: a change Django sees takes the vouch away at once (common.domain.revocation), a bulk
# update() only when it lapses. Past ACTIVE_USER_RENEW_SECONDS, one request of the user per
# process and second goes to Django, which vouches again before the key lapses: an active reader
# costs Django about one request this often, and never a burst of them.
ACTIVE_USER_SECONDS = 10
ACTIVE_USER_RENEW_SECONDS = 5


def pack_page(page: bytes, built_at: int) -> bytes:
    return b"%d %s\n%s" % (built_at, page_tag(page).encode(), page)


def unpack_page(raw: bytes | None) -> bytes | None:
    """The page stored as `raw`, or None when there is none or it is older than a lost bump."""
    unpacked = unpack_tagged_page(raw)
    return None if unpacked is None else unpacked[0]


def unpack_tagged_page(raw: bytes | None) -> tuple[bytes, bytes] | None:
    """The page stored as `raw` and its ETag; None when there is none or it is stale."""
    if raw is None:
        return None
    head, _, page = raw.partition(b"\n")
    built_at, _, tag = head.partition(b" ")
    return (page, tag) if page_is_fresh(int(built_at)) else None


def request_page_name(
    request: HttpRequest, resource: str, versions: dict[str, int], audience: str
) -> str:
    base_url = request.build_absolute_uri(request.path)
    query = request.META.get("QUERY_STRING", "")
    return page_name(resource, versions, base_url, query, audience)


def cached_page(
    request: HttpRequest,
    resource: str,
    audience: str | None,
    build: Callable[[], bytes],
    *,
    count_query: str | None = None,
    also: Sequence[Command] = (),
    handed: dict[str, int] | None = None,
    place: tuple[str, int] | None = None,
) -> tuple[bytes, bool]:
    """The page's bytes and whether they came from the cache.

    `request`'s query is already canonical (CachedListMixin); `audience` says who shares the
    page (keys.reader_audience), None for a page no cached one may answer. A miss builds under
    a short lock, so a burst of misses on one page costs one query. `count_query`: the query the
    list's count depends on (paged_query), read with the page for cached_count; `also`: writes
    of the caller's, made once the page is answered (none when building it fails), in the same
    round trip as the cache's own; `handed`: the versions the hit path read for this request;
    `place`: the page's size (as the query gives it) and number, whose end (page_ended) and the
    previous page's (page_start) are kept beside the count, under its versions and audience.

    Round trips: the versions; the page, the lock and the count together; on a miss, the page,
    the count, `also` and the lock's release together after the build.
    """
    if cache_skipped():
        return build(), False
    if audience is None:
        uncached = build()
        _send_apart(also)
        return uncached, False
    names = page_versions(resource, request.GET.get("project"))
    try:
        if handed is not None and handed.keys() == set(names) and not pending_bumps().names:
            versions: dict[str, int | None] = {**handed}
        else:
            retry_pending()  # a bump this process could not record goes first
            versions = read_versions(names)
    except CacheDown:
        return build(), False
    if None in versions.values():
        uncached = _build_first(request, resource, versions, audience, build)
        _send_apart(also)
        return uncached, False
    known = cast(dict[str, int], versions)
    name = request_page_name(request, resource, known, audience)
    counted = None if count_query is None else count_name(resource, known, count_query, audience)
    commands: list[Command] = [("get", name), ("add", lock_name(name), b"1", BUILD_LOCK_SECONDS)]
    commands += [("get", counted)] if counted else []
    ends = (
        [page_end_name(counted, place[0], place[1] - n) for n in (0, 1)]
        if counted and place
        else []
    )
    commands += [("get", ends[1])] if ends and place and place[1] > 1 else []
    try:
        raw, locked, *found = store().batch(commands)
        if (cached := unpack_page(raw)) is not None:
            # a lock taken in the same round trip is not needed
            _send_apart([*also, *([("delete", lock_name(name))] if locked else [])])
            return cached, True
        if not locked and (cached := _wait_for(name)) is not None:
            _send_apart(also)
            return cached, True
    except CacheDown:
        return build(), False
    count = _Count(counted, count_query, unpack_page(found[0]) if counted else None)
    count.end_name, count.start = (ends[0] if ends else None), _last_id(found[1:])
    token = _counted.set(count)
    writes: list[Command] = [("delete", lock_name(name))] if locked else []
    try:
        count.built_at = built_at = now_us()
        page = build()  # may raise: a bad filter is a 400, and nothing is stored
        writes = [*_page_write(name, page, built_at), *count.writes, *also, *writes]
    finally:
        _counted.reset(token)
        _send_apart(writes)
    return page, False


class _Count:
    """While a page is built: its list's count as read with the page, and the write of it."""

    def __init__(self, name: str | None, query: str | None, found: bytes | None) -> None:
        self.name, self.query, self.found = name, query, found
        self.writes: list[Command] = []
        self.start: int | None = None  # the last id of the page before, when known
        self.end_name: str | None = None  # where this page's last id is kept
        self.built_at = 0


def _last_id(found: list) -> int | None:
    raw = unpack_page(found[0]) if found else None
    return int(raw) if raw is not None and raw.isdigit() else None


# While a page is built: what its list's count is known by (cached_page).
_counted: ContextVar[_Count | None] = ContextVar("counted", default=None)


def cached_count(query: str, count: Callable[[], int]) -> int:
    """The row count of the list being built with the filters `query`, shared by its pages.

    Stored beside the page, under the same versions and audience: a walk through the pages of
    a list after a write counts its rows once, not once a page. Read with the page, written
    with it (cached_page).
    """
    if (known := _counted.get()) is None or known.name is None or known.query != query:
        return count()
    with contextlib.suppress(ValueError):
        if known.found is not None:
            return int(known.found)
    built_at = now_us()
    rows = count()
    known.writes += _page_write(known.name, str(rows).encode(), built_at)
    return rows


def page_start() -> int | None:
    """While a page is built: the last id of the page before it in the same list (same filters,
    page size, versions and audience), when a page built before kept it; else None."""
    known = _counted.get()
    return None if known is None else known.start


def page_ended(last_id: int) -> None:
    """While a page is built: its last row's id, kept for the next page's page_start."""
    if (known := _counted.get()) is not None and known.end_name is not None:
        known.writes += _page_write(known.end_name, str(last_id).encode(), known.built_at)


def paged_query(query: QueryDict, paging: Iterable[str]) -> str:
    """The canonical `query` without its paging parameters: what a list's count depends on."""
    unpaged = query.copy()
    for name in paging:
        unpaged.pop(name, None)
    return unpaged.urlencode()


def _build_first(
    request, resource: str, versions: dict, audience: str, build: Callable[[], bytes]
) -> bytes:
    # A version is created only once a page that depends on it was built: a request that
    # fails (an unknown ?project=, a bad filter) leaves no key behind.
    built_at = now_us()
    page = build()
    with contextlib.suppress(CacheDown):
        absent = [name for name, version in versions.items() if version is None]
        if started := start_versions(absent):
            name = request_page_name(request, resource, {**versions, **started}, audience)
            store().batch(_page_write(name, page, built_at))
    return page


def _page_write(name: str, page: bytes, built_at: int) -> list[Command]:
    if len(page) > settings.CACHE_PAGE_MAX_BYTES:
        return []  # served, but one page may not take a share of Redis this large
    return [("set", name, pack_page(page, built_at), _ttl())]


def _send_apart(commands: Sequence[Command]) -> None:
    """Best effort: a write Redis refuses is not made (the breaker then skips the cache)."""
    if commands:
        with contextlib.suppress(CacheDown):
            store().batch(commands)


def _wait_for(name: str) -> bytes | None:
    deadline = time.monotonic() + WAIT_FOR_BUILDER_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if (page := unpack_page(store().get_many([name])[0])) is not None:
            return page
    return None


def _ttl() -> int:
    return int(PAGE_TTL_SECONDS * random.uniform(0.9, 1.1))  # noqa: S311 (TTL jitter, not a secret)


if TYPE_CHECKING:  # what the mixin is mixed into, for the type checker
    from rest_framework.generics import ListAPIView as _ListView
else:
    _ListView = object


class CachedListMixin(_ListView):
    """For list views: answer GET from the cache, with `X-Cache: hit|miss` and the page's ETag
    (304 to an If-None-Match that names it).

    The list is answered for the canonical query: the parameters it reads, sorted, last value
    of each; whatever else the client sent is dropped before the view sees it.
    """

    cache_resource: str

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "cache_resource", None):
            register_list(cls.cache_resource, cls.list_parameters())

    @classmethod
    def list_parameters(cls) -> frozenset[str]:
        filterset = getattr(cls, "filterset_class", None)
        paginator: Any = cls.pagination_class  # a page-number paginator: it names its parameters
        names = {*(filterset.base_filters if filterset else ()), api_settings.URL_FORMAT_OVERRIDE}
        names |= {paginator.page_query_param, paginator.page_size_query_param}
        return frozenset(name for name in names if name)

    def initialize_request(self, request, *args, **kwargs):
        if request.method == "GET":
            query = canonical_query(request.GET, self.list_parameters())
            request.GET, request.META["QUERY_STRING"] = QueryDict(query), query
        return super().initialize_request(request, *args, **kwargs)

    def list(self, request, *args, **kwargs):
        from common.domain.access import membership_roles

        memberships = memberships_value(membership_roles(request.user))
        audience = reader_audience(self.cache_resource, request.GET.get("project"), memberships)
        build = lambda: self.render_list(request)  # noqa: E731
        page, hit = cached_page(
            request,
            self.cache_resource,
            audience,
            build,
            count_query=paged_query(request.GET, self.paging_parameters()),
            also=[_remember_active(request.user, memberships)],
            handed=getattr(request, "scope", {}).get(HANDED_VERSIONS),
            place=_place(request.GET, *self.paging_parameters()),
        )
        response = HttpResponse(page, content_type="application/json")
        response["X-Cache"] = "hit" if hit else "miss"
        response["ETag"] = page_tag(page)
        return not_modified(response) if none_match(request, response["ETag"]) else response

    def filter_queryset(self, queryset):
        """The filters' queryset; unchanged, without building the filterset and its form (most of
        a miss's own time), when the query names none of the filters: each would let it pass."""
        filterset = getattr(self, "filterset_class", None)
        named = filterset and filterset.base_filters.keys() & self.request.GET.keys()
        if filterset and not named and list(self.filter_backends) == [DjangoFilterBackend]:
            return queryset
        return super().filter_queryset(queryset)

    def render_list(self, request) -> bytes:
        """The page's bytes on a miss: DRF's list, rendered (views may do it faster)."""
        return JSONRenderer().render(super().list(request).data)

    def paging_parameters(self) -> tuple[str, str]:
        paginator: Any = self.pagination_class
        return paginator.page_query_param, paginator.page_size_query_param

    def count_rows(self, queryset) -> int:
        """The count of the filtered `queryset`, shared by every page of it (cached_count)."""
        return cached_count(paged_query(self.request.GET, self.paging_parameters()), queryset.count)


def _place(query: QueryDict, page: str, size: str) -> tuple[str, int] | None:
    """A numbered page's size as the query gives it (digits, or none) and its number."""
    number, given = query.get(page, "1"), query.get(size, "")
    if all(text.isascii() and text.isdigit() and len(text) <= 9 for text in (number, given or "0")):
        return given, int(number)
    return None


def _remember_active(user, memberships: bytes) -> Command:
    """The vouch for the user to the hit path, with the password claim and memberships it
    decides by: a write cached_page sends with its reads."""
    renew_at = int(time.time()) + ACTIVE_USER_RENEW_SECONDS
    vouch = vouch_value(get_md5_hash_password(user.password), renew_at, memberships)
    return ("set", active_user_name(user.pk), vouch, ACTIVE_USER_SECONDS)
