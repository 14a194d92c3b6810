"""The bare reference of bench.list_cache: the least an ASGI app does to serve a cached page.

`uvicorn bench._list_cache_bare:app`, under the same uvicorn settings as the tasks function.
GET /tasks/?QUERY with a bearer token: the token checked as the hit path checks it (PyJWT,
HS256, the same SECRET_KEY, `exp` required, `token_type == "access"`: its signature once per
token, its expiry on every request), then the hit path's two
Redis round trips for that query (LIST_BENCH_PAGES, JSON: query string -> [the keys the hit path
MGETs, the key where the bench put the body the tasks function answered]), sent as it is with
the same headers. No Django, no key derivation, no decoding.
"""

import functools
import json
import os
import time

import jwt
from redis import asyncio as aioredis

SECRET_KEY = os.environ["SECRET_KEY"]
PAGES = {query.encode(): keys for query, keys in json.loads(os.environ["LIST_BENCH_PAGES"]).items()}
PAGE_HEADERS = [(b"content-type", b"application/json"), (b"x-cache", b"hit")]
TEXT = [(b"content-type", b"text/plain")]


def token_is_valid(headers: list[tuple[bytes, bytes]]) -> bool:
    value = next((v for k, v in headers if k.lower() == b"authorization"), b"").decode("latin-1")
    kind, _, raw = value.partition(" ")
    expires = verified_expiry(raw.strip()) if kind == "Bearer" and raw else None
    return expires is not None and expires > time.time()


@functools.lru_cache(maxsize=4096)
def verified_expiry(raw: str) -> float | None:
    """An access token's `exp` once its signature is verified, as the hit path keeps it."""
    options = {"require": ["exp"]}
    try:
        claims = jwt.decode(raw, SECRET_KEY, algorithms=["HS256"], options=options)
    except jwt.InvalidTokenError:
        return None
    return claims["exp"] if claims.get("token_type") == "access" else None


async def send_body(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    if status == 200:
        headers.append((b"vary", b"Accept, Authorization"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BareListApp:
    """The ASGI app; one Redis client, made on the first request in the server's loop."""

    redis: aioredis.Redis | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        keys = PAGES.get(scope["query_string"])
        if scope["path"] == "/healthz":
            await send_body(send, 200, b"ok", TEXT)
        elif scope["path"] != "/tasks/" or keys is None or not token_is_valid(scope["headers"]):
            await send_body(send, 404, b"not here", TEXT)
        elif (page := await self.page(*keys)) is None:
            await send_body(send, 503, b"page not in redis", TEXT)
        else:
            await send_body(send, 200, page, PAGE_HEADERS)

    async def page(self, versions: list[str], page_key: str) -> bytes | None:
        if self.redis is None:
            self.redis = aioredis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=0.5)
        await self.redis.mget(versions)
        return await self.redis.get(page_key)


app = BareListApp()
