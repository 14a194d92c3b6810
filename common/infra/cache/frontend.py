"""The hit path of the list cache, in front of Django: cached pages straight from Redis.

A GET of a cached list with a valid access token is answered here, with one Redis round trip for
the versions and one for the page, without entering Django. Anything else (a miss, no or a bad
token, Redis trouble, a bump this process could not record yet) goes on to Django, which answers
and fills the cache (common.infra.cache.pages), with the versions read here (a miss reads them
once). The token's signature and claims are verified here
(once per token: an LRU of verified tokens), and its expiry on every request; that its user is
active and the token is of their current password, Django vouches for with a short-lived key it
sets after authenticating, which deactivating, deleting the user or changing their password
removes (common.domain.revocation). A hit carries the security headers Django's
SecurityMiddleware gives a miss, from the same settings, and the page's ETag, stored beside it:
an If-None-Match that names it is answered 304, without the page.
"""

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.signals import setting_changed
from django.http import QueryDict
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from common.api.bearer import asgi_bearer_token
from common.api.conditional import none_match_header
from common.api.origin import request_origin
from common.infra.cache.keys import (
    active_user_name,
    canonical_query,
    list_parameters,
    page_name,
    page_versions,
    read_vouch,
    reader_audience,
    version_name,
)
from common.infra.cache.pages import HANDED_VERSIONS, unpack_tagged_page
from common.infra.cache.store import CacheDown, RedisStore, cache_skipped, store


class CachedListFrontend:
    """ASGI middleware: serve cached pages of `resources` (`/projects/`, `/tasks/`) from Redis."""

    def __init__(self, app, resources: tuple[str, ...]) -> None:
        self.app = app
        self.paths = {f"/{resource}/": resource for resource in resources}

    async def __call__(self, scope, receive, send) -> None:
        resource = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if resource and scope["method"] == "GET" and not cache_skipped():
            origin = request_origin(scope)
            user_id, claim = _token_user(scope)
            page = await self._cached_page(scope, resource, origin.scheme_host, user_id, claim)
            if page is UNVOUCHED and await _vouches.wait(user_id):
                page = await self._cached_page(scope, resource, origin.scheme_host, user_id, claim)
            if isinstance(page, tuple):
                body, tag = page
                await _send_page(send, body, tag, _if_none_match(scope), origin.security_headers)
                return
            if page is UNVOUCHED:
                with _vouches.fetching(user_id):  # this user's others wait for Django's vouch
                    await self.app(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _cached_page(
        self, scope, resource: str, scheme_host: str | None, user_id: str | None, claim: object
    ) -> tuple[bytes, bytes] | object | None:
        """The page and its ETag; None for Django to answer; UNVOUCHED when only the user's
        vouch is missing (Django answers, and vouches for them)."""
        query = _list_query(resource, scope.get("query_string", b""))
        redis = store()
        if query is None or scheme_host is None or user_id is None:
            return None  # Django answers it (and refuses a host it does not serve)
        if not isinstance(redis, RedisStore):
            return None
        project, canonical = query
        names = page_versions(resource, project)
        try:
            *found, vouch = await redis.get_many_async(
                [*map(version_name, names), active_user_name(user_id)]
            )
            # A version not started, a user not vouched for lately, or a token of their password
            # before the one Django vouched with: Django answers (and vouches again).
            vouched = read_vouch(vouch, claim) if vouch is not None else None
            if None in found:
                return None
            versions = {name: int(raw or 0) for name, raw in zip(names, found, strict=True)}
            scope[HANDED_VERSIONS] = versions  # if Django answers, it need not read them again
            if vouched is None:
                return UNVOUCHED
            memberships, renew_at = vouched
            if renew_at <= time.time() and _renewing(user_id):
                return None  # this one request goes to Django, which vouches again
            audience = reader_audience(resource, project, memberships)
            if audience is None:  # a project the reader is not a member of: Django says 400
                return None
            name = page_name(resource, versions, scheme_host + scope["path"], canonical, audience)
            [raw_page] = await redis.get_many_async([name])
        except CacheDown:
            return None  # Django answers it
        return unpack_tagged_page(raw_page)


UNVOUCHED = object()  # _cached_page: no vouch for the user (lapsed, or never given)
VOUCH_WAIT_SECONDS = 5.0


class _Vouches:
    """One request per user at a time goes to Django for a vouch, in this process.

    A user's vouch lapses when they read nothing for ACTIVE_USER_SECONDS; when they come back
    with many requests at once (a client's connections, a page's parallel reads), the first goes
    to Django, which vouches for them, and the others wait for it (at most VOUCH_WAIT_SECONDS)
    and are then answered here, rather than all going to Django together and holding up every
    other request of the process. Waiting is tried once: a request still without a vouch after
    it goes to Django itself (which refuses a deactivated user or an old password's token).
    """

    def __init__(self) -> None:
        self.fetches: dict[str, asyncio.Event] = {}  # user id -> set when Django has answered

    async def wait(self, user_id: str | None) -> bool:
        """Wait for the request of this user at Django, if there is one: True if there was."""
        fetched = self.fetches.get(user_id) if user_id is not None else None
        if fetched is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fetched.wait(), VOUCH_WAIT_SECONDS)
        return True

    @contextlib.contextmanager
    def fetching(self, user_id: str | None) -> Iterator[None]:
        if user_id is None or user_id in self.fetches:
            yield
            return
        fetched = self.fetches[user_id] = asyncio.Event()
        try:
            yield
        finally:
            del self.fetches[user_id]
            fetched.set()


_vouches = _Vouches()


@functools.lru_cache(maxsize=1024)  # bounded: a client may send any query
def _list_query(resource: str, query_string: bytes) -> tuple[str | None, str] | None:
    """`?project=` and the canonical query of a list's query string; None before its view loads."""
    parameters = list_parameters(resource)
    if parameters is None:
        return None
    query = QueryDict(query_string)
    return query.get("project"), canonical_query(query, parameters)


_renewals: dict[str, float] = {}  # user id -> when this process last let Django renew the vouch
RENEW_RETRY_SECONDS = 1.0


def _renewing(user_id: str) -> bool:
    """True for one request per user and RENEW_RETRY_SECONDS in this process: the one sent to
    Django to renew a vouch that is due (the others are still answered here)."""
    now = time.monotonic()
    if now - _renewals.get(user_id, -math.inf) < RENEW_RETRY_SECONDS:
        return False
    if len(_renewals) >= 10_000:  # bounded: readers come and go
        _renewals.clear()
    _renewals[user_id] = now
    return True


def _token_user(scope) -> tuple[str | None, object]:
    """The user id and password claim of a valid access token in the request, else None, None."""
    raw = asgi_bearer_token(scope)
    verified = None if raw is None else _access_token(raw)
    if verified is None or verified.valid_until <= time.time():  # expired now, not when verified
        return None, None
    return verified.user_id, verified.revoke_claim


@dataclass(frozen=True)
class _Verified:
    user_id: str
    revoke_claim: object  # the digest of the user's password the token was issued under
    valid_until: float  # unix seconds: simplejwt refuses it from then on (its `exp` + LEEWAY)


@functools.lru_cache(maxsize=4096)  # bounded; a client sends its token again and again
def _access_token(raw: str) -> _Verified | None:
    """The token, once its signature and claims are verified (simplejwt's AccessToken), else
    None. Verifying a signature is most of a hit's own work; its expiry is checked per use."""
    try:
        token = AccessToken(raw)  # type: ignore[arg-type]  # a raw token string, as simplejwt takes
        user_id = str(token[api_settings.USER_ID_CLAIM])
        # simplejwt's check_exp: refused once exp <= now - leeway
        leeway = token.get_token_backend().get_leeway().total_seconds()
        valid_until = float(token["exp"]) + leeway
        return _Verified(user_id, token.get(api_settings.REVOKE_TOKEN_CLAIM), valid_until)
    except (TokenError, KeyError, OverflowError, ValueError, TypeError):
        return None


setting_changed.connect(lambda **kwargs: _access_token.cache_clear(), weak=False)


def _names(if_none_match: bytes, tag: bytes) -> bool:
    return none_match_header(if_none_match.decode("latin-1"), tag.decode())


def _if_none_match(scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return value
    return None


async def _send_page(
    send, page: bytes, tag: bytes, if_none_match: bytes | None, security_headers
) -> None:
    common = [(b"x-cache", b"hit"), (b"etag", tag), (b"vary", b"Accept, Authorization")]
    if if_none_match is not None and _names(if_none_match, tag):
        headers = [*common, *security_headers]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(page)).encode()),
        *common,
        *security_headers,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": page})
