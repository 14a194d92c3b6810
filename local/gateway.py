"""The local gateway: one ASGI app that hands each request to the function owning its path."""

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from local.routes import route

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WEBSOCKET_TARGETS = {"realtime"}  # the functions speak HTTP only


class Gateway:
    """Routes by local.routes; a path no function owns answers 404 like the functions do."""

    def __init__(self, apps: Mapping[str, ASGIApp], lifespan: ASGIApp | None = None) -> None:
        self.apps = dict(apps)
        self.lifespan = lifespan  # the one mounted app's lifespan that this process runs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await (self.lifespan or _lifespan)(scope, receive, send)
            return
        target = route(scope["path"])
        if scope["type"] == "websocket" and target not in WEBSOCKET_TARGETS:
            await send({"type": "websocket.close", "code": 1000})  # refuse the handshake
        elif (app := self.apps.get(target or "")) is not None:
            await app(scope, receive, send)
        else:
            await _not_found(send)


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _not_found(send: Send) -> None:
    body = json.dumps({"detail": "Not found."}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})
