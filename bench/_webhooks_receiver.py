"""The webhooks bench's receiver: a bare ASGI app (uvicorn) that notes each POST's path,
`webhook-id` and arrival time, answers 204, and reports them at GET /stats (how many at
GET /count: polled while a phase runs, cheap beside the POSTs)."""

import json
import time

records: list[tuple[str, str, float]] = []


async def _answer(send, status: int, body: bytes = b"") -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if scope["method"] == "POST":
        more = True
        while more:  # the body, read and dropped
            message = await receive()
            more = message.get("more_body", False)
        msg_id = dict(scope["headers"]).get(b"webhook-id", b"").decode()
        records.append((path, msg_id, time.time()))
        await _answer(send, 204)
    elif path == "/count":
        await _answer(send, 200, b"%d" % len(records))
    elif path == "/stats":
        await _answer(send, 200, json.dumps(records).encode())
    elif path == "/reset":
        records.clear()
        await _answer(send, 200, b"{}")
    else:  # /healthz
        await _answer(send, 200, b'{"status":"ok"}')
