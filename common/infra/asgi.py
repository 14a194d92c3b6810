"""The ASGI application of one function: Django, serving only that function's urlconf.

Every function shares the settings; the urlconf is chosen per application, so several functions
can also live in one process (the local gateway) without seeing each other's paths. In front of
Django: the request-size limit (BodyLimit) and, with Redis, the cached list pages.
"""

import gc
import json
import os
from collections.abc import Awaitable, Callable
from importlib import import_module

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from common.api.origin import request_origin

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[dict, Receive, Send], Awaitable[None]]


class FunctionHandler(ASGIHandler):
    """Django's ASGI handler, routing every request through one urlconf."""

    def __init__(self, urlconf: str) -> None:
        super().__init__()
        self.urlconf = urlconf
        import_module(urlconf)  # load the routes and views at init, not on the first request

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        request.urlconf = self.urlconf
        return await super().get_response_async(request)


class BodyLimit:
    """ASGI middleware: the one request-size limit, DATA_UPLOAD_MAX_MEMORY_SIZE (1 MiB).

    A declared Content-Length over it is refused at once; a body sent without one (chunked) is
    counted as it arrives and refused once past it. Either is 413 JSON. What passes is handed on
    whole, with its length declared, so Django's parsers read it however it was sent.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            declared = _declared_length(scope)
        except ValueError:
            await send_json(scope, send, 400, {"detail": "Invalid Content-Length header."})
            return
        if declared is not None and declared > limit:
            await send_json(scope, send, 413, {"detail": _too_big(limit)})
            return
        body = await _read_body(receive, limit)
        if body is None:
            await send_json(scope, send, 413, {"detail": _too_big(limit)})
        elif body is not _DISCONNECTED:
            await self.app(_with_length(scope, len(body)), _replay(body, receive), send)


_DISCONNECTED = b"<disconnected>"  # compared by identity: the client left mid-body


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body; None once it is past `limit`; _DISCONNECTED when the client left."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _DISCONNECTED
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _declared_length(scope: dict) -> int | None:
    """The Content-Length the client declared; ValueError for one that is not a length."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            if not value.isdigit():
                raise ValueError(value)
            return int(value)
    return None


def _with_length(scope: dict, length: int) -> dict:
    headers = [(name, value) for name, value in scope["headers"] if name != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then whatever the client sends next (its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> dict:
        return pending.pop() if pending else await receive()

    return replayed


def _too_big(limit: int) -> str:
    return f"Request body over {limit} bytes."


async def send_json(scope: dict, send: Send, status: int, body: dict) -> None:
    """An answer made in front of Django, with the security headers Django would add."""
    content = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        *request_origin(scope).security_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def function_application(urlconf: str, *, cached_lists: tuple[str, ...] = ()):
    """The function's ASGI app; with Redis, cached list pages are answered before Django."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.infra.settings")
    django.setup(set_prefix=False)
    # A cached hit reads no body: the limit is behind the hit path.
    app: ASGIApp = BodyLimit(FunctionHandler(urlconf))
    if cached_lists and settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        from common.infra.cache.frontend import CachedListFrontend

        app = CachedListFrontend(app, cached_lists)
    # What start-up loaded lives as long as the process: the collector need not walk it again on
    # every full collection (the tail latency of a hit, beside a process with a small heap).
    gc.freeze()
    return app
