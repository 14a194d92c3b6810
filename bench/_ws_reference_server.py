"""The reference fan-out of bench.ws_latency: Redis pub/sub relayed by a bare `websockets` server.

`python -m bench._ws_reference_server PORT REDIS_URL CHANNEL` listens on 127.0.0.1:PORT, keeps
every websocket that connects (any path) and broadcasts each message of the Redis channel, as a
text frame, to all of them. Nothing else: no authentication, no database, no per-client state.
It runs on uvloop when installed, as uvicorn does for the candidate.
"""

import asyncio
import sys

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve

CLIENTS: set[ServerConnection] = set()


async def keep(connection: ServerConnection) -> None:
    """Hold a connection in CLIENTS until it closes."""
    CLIENTS.add(connection)
    try:
        await connection.wait_closed()
    finally:
        CLIENTS.discard(connection)


async def relay(redis_url: str, channel: str) -> None:
    """Broadcast every message of the channel to every connected client."""
    client = aioredis.from_url(redis_url)
    async with client.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            if message["type"] == "message":
                broadcast(CLIENTS, message["data"].decode())


async def serve_forever(port: int, redis_url: str, channel: str) -> None:
    async with serve(keep, "127.0.0.1", port):
        await relay(redis_url, channel)


def main(argv: list[str]) -> None:
    port, redis_url, channel = int(argv[0]), argv[1], argv[2]
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_forever(port, redis_url, channel))
    else:
        uvloop.run(serve_forever(port, redis_url, channel))


if __name__ == "__main__":
    main(sys.argv[1:])
