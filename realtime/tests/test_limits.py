"""What one user or one socket may hold: sockets per user, projects per socket, and Redis down."""

import time

import pytest
import redis
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from realtime.socket_quota import LEASE_SECONDS, MAX_PER_USER, socket_quota
from realtime.subscription import MAX_PROJECTS
from realtime.tests.conftest import TIMEOUT, receive

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there


async def _is_open(socket: WebsocketCommunicator) -> bool:
    await socket.send_json_to({"action": "ping"})
    while (answer := await receive(socket))["type"] == "unsubscribed":
        pass  # asked for projects the user is not a member of
    return answer == {"type": "pong"}


async def _closed_with(socket: WebsocketCommunicator) -> int:
    return (await socket.receive_output(timeout=TIMEOUT))["code"]


async def _the_next_socket_past_the_limit_is_closed_with_4429(connect):
    sockets = [await connect() for _ in range(MAX_PER_USER)]

    extra = await connect()
    assert (await receive(extra))["type"] == "error"
    assert await _closed_with(extra) == 4429
    assert all([await _is_open(socket) for socket in sockets])

    await sockets.pop().disconnect(timeout=TIMEOUT)  # its place is free again
    assert await _is_open(await connect())


async def test_a_user_has_at_most_twenty_sockets_across_processes_in_redis(connect):
    await _the_next_socket_past_the_limit_is_closed_with_4429(connect)


async def test_a_user_has_at_most_twenty_sockets_in_local_mode_without_redis(connect):
    with override_settings(CHANNEL_REDIS_URL=""):
        await _the_next_socket_past_the_limit_is_closed_with_4429(connect)


async def test_the_sockets_of_a_process_that_died_lapse(connect):
    client = redis.asyncio.Redis.from_url(settings.CHANNEL_REDIS_URL)
    lapsed = {f"dead-{n}": time.time() - 1 for n in range(MAX_PER_USER)}  # leases not renewed
    await client.zadd(f"{settings.REDIS_PREFIX}:ws-sockets:alice", lapsed)
    await client.aclose()

    assert await _is_open(await connect())


async def test_one_round_trip_renews_the_leases_of_every_socket_of_the_process(connect):
    sockets = [await connect() for _ in range(3)]
    key = f"{settings.REDIS_PREFIX}:ws-sockets:alice"
    client = redis.asyncio.Redis.from_url(settings.CHANNEL_REDIS_URL)
    await client.zadd(key, {member: 1 for member in await client.zrange(key, 0, -1)})  # lapsed
    await client.zadd(key, {"another-process": time.time() + 5})

    await socket_quota().renew()

    leases = dict(await client.zrange(key, 0, -1, withscores=True))
    await client.aclose()
    assert leases.pop(b"another-process") < time.time() + 10  # not this process's to renew
    assert len(leases) == len(sockets)
    assert min(leases.values()) > time.time() + LEASE_SECONDS - 10


async def test_projects_may_name_at_most_a_hundred_ids(connect):
    ids = ",".join(str(n) for n in range(1, MAX_PROJECTS + 2))
    at_most = ",".join(str(n) for n in range(1, MAX_PROJECTS + 1))

    too_many = await connect(f"projects={ids}")
    error = await receive(too_many)

    assert error == {"type": "error", "detail": f"projects: at most {MAX_PROJECTS} ids"}
    assert await _closed_with(too_many) == 4400
    assert await _is_open(await connect(f"projects={at_most}"))


async def test_with_the_events_redis_unreachable_the_handshake_is_accepted_then_closed_1013(
    application, token, caplog
):
    with override_settings(CHANNEL_REDIS_URL=CLOSED_REDIS):
        socket = WebsocketCommunicator(application, f"/ws/notifications/?token={token}")
        connected, _ = await socket.connect(timeout=TIMEOUT)

        assert connected is True
        assert await _closed_with(socket) == 1013
    assert "Redis is unavailable" in caplog.text
