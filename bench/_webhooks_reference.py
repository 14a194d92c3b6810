"""The webhooks bench's reference: signed POSTs from a bare httpx client loop.

`python -m bench._webhooks_reference URL_BASE COUNT WEBHOOKS CLIENTS`: COUNT POSTs of an
envelope-sized body to URL_BASE/ref/{i % WEBHOOKS}, each with its own webhook-id and a Standard
Webhooks signature, WEBHOOKS at a time on each of CLIENTS httpx.AsyncClients (kept-alive
connections): a worker thread's connection pool and a write's deliveries each.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
import uuid

BODY = {
    "type": "task.updated",
    "project": 1,
    "seq": 1,
    "id": "",
    "occurred_at": "2030-01-01T00:00:00.000000Z",
    "actor": "bench",
    "data": {"id": 1, "title": "A task of the bench", "status": "in_progress", "n": 0},
}


async def main(base: str, count: int, webhooks: int, clients: int) -> None:
    todo = iter(range(count))
    await asyncio.gather(*(_client(base, todo, webhooks) for _ in range(clients)))


async def _client(base: str, todo, webhooks: int) -> None:
    import httpx

    key = secrets.token_bytes(24)
    async with httpx.AsyncClient(timeout=10) as client:

        async def loop() -> None:
            for i in todo:
                msg_id = str(uuid.uuid4())
                body = json.dumps({**BODY, "id": msg_id, "seq": i}, separators=(",", ":"))
                stamp = int(time.time())
                signed = f"{msg_id}.{stamp}.{body}".encode()
                signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
                headers = {
                    "content-type": "application/json",
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": "v1," + signature.decode(),
                }
                response = await client.post(
                    f"{base}/ref/{i % webhooks}", content=body, headers=headers
                )
                response.raise_for_status()

        await asyncio.gather(*(loop() for _ in range(webhooks)))


if __name__ == "__main__":
    base, count, webhooks, clients = sys.argv[1], *map(int, sys.argv[2:5])
    asyncio.run(main(base, count, webhooks, clients))
