"""The reference fan-out of bench.ws_latency: Redis pub/sub relayed by a bare `websockets` server.

`python -m bench._ws_reference_server PORT REDIS_URL PREFIX` listens on 127.0.0.1:PORT, keeps
every websocket that connects to `/?project=ID` in that project's set, subscribes to the pattern
`PREFIX.*` and broadcasts each message of channel `PREFIX.ID`, as a text frame, to project ID's
set only. Nothing else: no authentication, no database, no per-client state.
It runs on uvloop when installed, as uvicorn does for the candidate.
"""

import asyncio
import sys
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve

MEMBERS: defaultdict[int, set[ServerConnection]] = defaultdict(set)


async def keep(connection: ServerConnection) -> None:
    """Hold a connection in its project's set until it closes."""
    query = parse_qs(urlsplit(connection.request.path).query)
    members = MEMBERS[int(query["project"][0])]
    members.add(connection)
    try:
        await connection.wait_closed()
    finally:
        members.discard(connection)


async def relay(redis_url: str, prefix: str) -> None:
    """Broadcast every message of a project's channel to that project's clients."""
    client = aioredis.from_url(redis_url)
    async with client.pubsub() as pubsub:
        await pubsub.psubscribe(f"{prefix}.*")
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                project = int(message["channel"].rpartition(b".")[2])
                broadcast(MEMBERS.get(project, ()), message["data"].decode())


async def serve_forever(port: int, redis_url: str, prefix: str) -> None:
    async with serve(keep, "127.0.0.1", port, compression=None):
        await relay(redis_url, prefix)


def main(argv: list[str]) -> None:
    port, redis_url, prefix = int(argv[0]), argv[1], argv[2]
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_forever(port, redis_url, prefix))
    else:
        uvloop.run(serve_forever(port, redis_url, prefix))


if __name__ == "__main__":
    main(sys.argv[1:])
