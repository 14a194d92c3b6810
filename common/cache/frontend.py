"""The hit path of the list cache, in front of Django: cached pages straight from Redis.

A GET of a cached list with a valid access token is answered here, with one Redis round trip for
the versions and one for the page, without entering Django. Anything else (a miss, no or a bad
token, Redis trouble, a bump this process could not record yet) goes on to Django, which answers
and fills the cache (common.cache.pages). The token's signature and expiry are checked here;
that its user is active, Django vouches for with a short-lived key it sets after authenticating,
which deactivating or deleting the user removes. A hit carries the security headers Django's
SecurityMiddleware gives a miss, from the same settings.
"""

import io

from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from common.cache.keys import (
    active_user_name,
    canonical_query,
    list_parameters,
    page_name,
    page_versions,
    version_name,
)
from common.cache.pages import unpack_page
from common.cache.store import CacheDown, RedisStore, cache_skipped, store


class CachedListFrontend:
    """ASGI middleware: serve cached pages of `resources` (`/projects/`, `/tasks/`) from Redis."""

    def __init__(self, app, resources: tuple[str, ...]) -> None:
        self.app = app
        self.paths = {f"/{resource}/": resource for resource in resources}

    async def __call__(self, scope, receive, send) -> None:
        resource = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if resource and scope["method"] == "GET" and not cache_skipped():
            request = ASGIRequest(scope, io.BytesIO())
            page = await self._cached_page(request, resource)
            if page is not None:
                await _send_page(send, page, _security_headers(request))
                return
        await self.app(scope, receive, send)

    async def _cached_page(self, request: ASGIRequest, resource: str) -> bytes | None:
        parameters = list_parameters(resource)
        redis = store()
        user_id = _token_user_id(request)
        if parameters is None or user_id is None or not isinstance(redis, RedisStore):
            return None
        names = page_versions(resource, request.GET.get("project"))
        try:
            base_url = request.build_absolute_uri(request.path)
            *found, active = await redis.get_many_async(
                [*map(version_name, names), active_user_name(user_id)]
            )
            if None in found or active is None:  # a version not started, or a user not vouched for
                return None
            versions = {name: int(raw) for name, raw in zip(names, found, strict=True)}
            query = canonical_query(request.GET, parameters)
            name = page_name(resource, versions, base_url, query, user_id)
            [raw_page] = await redis.get_many_async([name])
        except (DisallowedHost, CacheDown):
            return None  # Django answers it
        return unpack_page(raw_page)


def _token_user_id(request: ASGIRequest) -> str | None:
    """The user id of a valid access token in the request, else None."""
    kind, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if kind != "Bearer" or not raw:
        return None
    try:
        return str(AccessToken(raw.strip())[api_settings.USER_ID_CLAIM])
    except (TokenError, KeyError, OverflowError, ValueError, TypeError):
        return None


def _security_headers(request: ASGIRequest) -> list[tuple[bytes, bytes]]:
    # Django's own middleware decides them (HSTS only on a secure request, as is_secure() and
    # SECURE_PROXY_SSL_HEADER say), read from the settings as they are now.
    response = SecurityMiddleware(_no_view).process_response(request, HttpResponse())
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.items()
        if name.lower() != "content-type"
    ]


def _no_view(request):
    raise AssertionError("the middleware is only asked for its headers")


async def _send_page(send, page: bytes, security_headers: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(page)).encode()),
        (b"x-cache", b"hit"),
        (b"vary", b"Accept, Authorization"),
        *security_headers,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": page})
