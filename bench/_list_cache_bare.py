"""The bare reference of bench.list_cache: the least an ASGI app can do to serve a cached page.

`uvicorn bench._list_cache_bare:app`, under the same uvicorn settings as the tasks function.
GET /tasks/ with a bearer token: the token is checked as the real hit path checks it (PyJWT,
HS256, the same SECRET_KEY, `exp` required and checked, `token_type == "access"`), then two Redis
round trips like the real path's (an MGET of the tasks version key, a GET of the page), the page
stripped of the built-at stamp the list cache stores before it, sent with the same four headers.
No Django, no query-string parsing, no key derivation: the page key is fixed
(LIST_BENCH_PAGE_KEY), holding a copy of the bytes the real app cached. GET /healthz answers
the event loop's class.

Environment: SECRET_KEY, REDIS_URL, LIST_BENCH_VERSION_KEY, LIST_BENCH_PAGE_KEY.
"""

import asyncio
import os

import jwt
from redis import asyncio as aioredis

SECRET_KEY = os.environ["SECRET_KEY"]
REDIS_URL = os.environ["REDIS_URL"]
VERSION_KEY = os.environ["LIST_BENCH_VERSION_KEY"]
PAGE_KEY = os.environ["LIST_BENCH_PAGE_KEY"]
PAGE_HEADERS = [(b"content-type", b"application/json"), (b"x-cache", b"hit")]


def token_is_valid(headers: list[tuple[bytes, bytes]]) -> bool:
    """True when the Authorization header holds a signed, unexpired access token."""
    value = next((v for k, v in headers if k.lower() == b"authorization"), b"").decode("latin-1")
    kind, _, raw = value.partition(" ")
    if kind != "Bearer" or not raw:
        return False
    try:
        claims = jwt.decode(
            raw.strip(), SECRET_KEY, algorithms=["HS256"], options={"require": ["exp"]}
        )
    except jwt.InvalidTokenError:
        return False
    return claims.get("token_type") == "access"


async def send_body(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    length = [(b"content-length", str(len(body)).encode())]
    extra = [(b"vary", b"Accept, Authorization")] if status == 200 else []
    start = {"type": "http.response.start", "status": status, "headers": headers + length + extra}
    await send(start)
    await send({"type": "http.response.body", "body": body})


class BareListApp:
    """The ASGI app; one Redis client, made on the first request in the server's loop."""

    def __init__(self) -> None:
        self._redis: aioredis.Redis | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, send)

    async def _http(self, scope, send) -> None:
        text = [(b"content-type", b"text/plain")]
        if scope["path"] == "/healthz":
            loop = type(asyncio.get_running_loop())
            await send_body(send, 200, f"{loop.__module__}.{loop.__qualname__}".encode(), text)
        elif scope["path"] != "/tasks/" or scope["method"] != "GET":
            await send_body(send, 404, b"not found", text)
        elif not token_is_valid(scope["headers"]):
            await send_body(send, 401, b"bad token", text)
        elif (page := await self._page()) is None:
            await send_body(send, 503, b"page not in redis", text)
        else:
            await send_body(send, 200, page, list(PAGE_HEADERS))

    async def _page(self) -> bytes | None:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(
                REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5
            )
        versions = await self._redis.mget([VERSION_KEY])
        if None in versions:
            return None
        raw = await self._redis.get(PAGE_KEY)
        return None if raw is None else raw.partition(b"\n")[2]  # after the built-at stamp

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._redis is not None:
                    await self._redis.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = BareListApp()
