"""The hit path of the list cache, in front of Django: cached pages straight from Redis.

A GET of a cached list with a valid access token is answered here, with one Redis round trip for
the versions and one for the page, without entering Django. Anything else (a miss, no or a bad
token, Redis trouble) goes on to Django, which answers and fills the cache (common.cache).
The token's signature and expiry are checked here; that its user is active, Django vouches for
with a short-lived key it sets after authenticating, which deactivating or deleting the user
removes.
"""

import asyncio
import io
import pickle

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from redis import asyncio as aioredis
from redis.exceptions import RedisError
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken

from common.cache import (
    active_user_key,
    cache_failed,
    cache_skipped,
    page_key,
    page_versions,
)


class CachedListFrontend:
    """ASGI middleware: serve cached pages of `resources` (`/projects/`, `/tasks/`) from Redis."""

    def __init__(self, app, resources: tuple[str, ...]) -> None:
        self.app = app
        self.paths = {f"/{resource}/": resource for resource in resources}
        self._clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}

    async def __call__(self, scope, receive, send) -> None:
        resource = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if resource and scope["method"] == "GET" and not cache_skipped():
            page = await self._cached_page(scope, resource)
            if page is not None:
                await _send_page(send, page)
                return
        await self.app(scope, receive, send)

    async def _cached_page(self, scope, resource: str) -> bytes | None:
        request = ASGIRequest(scope, io.BytesIO())
        user_id = _token_user_id(request)
        if user_id is None:
            return None
        names = page_versions(resource, request.GET.get("project"))
        keys = [*names, active_user_key(user_id)]
        try:
            base_url = request.build_absolute_uri(request.path)
            redis = self._redis()
            found = await redis.mget([cache.make_key(key) for key in keys])
            if None in found:  # a version never set, or a user Django has not vouched for lately
                return None
            versions = {name: int(raw) for name, raw in zip(names, found, strict=False)}
            key = page_key(resource, versions, base_url, request.GET.urlencode())
            raw_page = await redis.get(cache.make_key(key))
        except DisallowedHost:
            return None  # Django answers it
        except (RedisError, OSError) as exc:
            cache_failed(exc)
            return None
        # Unpickling is safe as far as Redis is: only the Django side writes these pages.
        return None if raw_page is None else pickle.loads(raw_page)

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = aioredis.Redis.from_url(
                settings.CACHES["default"]["LOCATION"], **settings.CACHES["default"]["OPTIONS"]
            )
        return self._clients[loop]


def _token_user_id(request: ASGIRequest) -> str | None:
    """The user id of a valid access token in the request, else None."""
    kind, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if kind != "Bearer" or not raw:
        return None
    try:
        return str(AccessToken(raw.strip())[api_settings.USER_ID_CLAIM])
    except (TokenError, KeyError, OverflowError, ValueError, TypeError):
        return None


async def _send_page(send, page: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(page)).encode()),
        (b"x-cache", b"hit"),
        (b"vary", b"Accept, Authorization"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": page})
