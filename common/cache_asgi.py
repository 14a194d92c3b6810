"""The hit path of the list cache, in front of Django: cached pages straight from Redis.

A GET of a cached list with a valid access token is answered here, with one Redis round trip for
the versions and one for the page, without entering Django. Anything else (a miss, no or a bad
token, Redis trouble) goes on to Django, which answers and fills the cache (common.cache).
The token is checked by signature and expiry only; Django also checks the user is active.
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
from rest_framework_simplejwt.tokens import AccessToken

from common.cache import cache_failed, cache_skipped, page_key, page_versions


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
        if not _has_valid_token(request):
            return None
        names = page_versions(resource, request.GET.get("project"))
        try:
            base_url = request.build_absolute_uri(request.path)
            redis = self._redis()
            raw_versions = await redis.mget([cache.make_key(name) for name in names])
            if None in raw_versions:
                return None
            versions = {name: int(raw) for name, raw in zip(names, raw_versions, strict=True)}
            query = [(name, value) for name, values in request.GET.lists() for value in values]
            raw_page = await redis.get(
                cache.make_key(page_key(resource, versions, base_url, query))
            )
        except DisallowedHost:
            return None  # Django answers it
        except (RedisError, OSError) as exc:
            cache_failed(exc)
            return None
        return None if raw_page is None else pickle.loads(raw_page)

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = aioredis.Redis.from_url(
                settings.CACHES["default"]["LOCATION"], **settings.CACHES["default"]["OPTIONS"]
            )
        return self._clients[loop]


def _has_valid_token(request: ASGIRequest) -> bool:
    kind, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if kind != "Bearer" or not raw:
        return False
    try:
        AccessToken(raw.strip())
    except TokenError:
        return False
    return True


async def _send_page(send, page: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(page)).encode()),
        (b"x-cache", b"hit"),
        (b"vary", b"Accept, Authorization"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": page})
