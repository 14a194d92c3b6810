"""A socket closes with 4401 when its user is deactivated, deleted or given another password,
however that is done (CONTRACT section 2: within 10 seconds). Real Redis and PostgreSQL."""

import asyncio
import time

import pytest
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from rest_framework_simplejwt.tokens import AccessToken

from common.domain import services
from common.tests.factories import UserFactory
from common.tests.user_changes import listening
from realtime import fanout
from realtime.tests.conftest import TIMEOUT, in_thread, receive

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


def _save_inactive(user) -> None:
    user.is_active = False
    user.save()


def _set_password_and_save(user) -> None:
    user.set_password("new-pass-2")
    user.save()


WAYS = {
    "deactivate: save()": _save_inactive,
    "deactivate: service": lambda user: services.user_deactivate(user=user),
    "deactivate: bulk update()": lambda user: User.objects.filter(pk=user.pk).update(
        is_active=False
    ),
    "delete": lambda user: user.delete(),
    "password: set_password() and save()": _set_password_and_save,
    "password: bulk update()": lambda user: User.objects.filter(pk=user.pk).update(
        password=make_password("new-pass-2")
    ),
}


async def closed_code(socket) -> int:
    closed = await socket.receive_output(timeout=TIMEOUT)
    assert closed["type"] == "websocket.close"
    return closed["code"]


@pytest.mark.parametrize("way", WAYS)
async def test_an_open_socket_is_closed_with_4401(way, connect, monkeypatch):
    monkeypatch.setattr(fanout, "ACTIVE_CHECK_SECONDS", 0.2)
    bob = await in_thread(UserFactory)(username="bob")
    socket = await connect(token=str(AccessToken.for_user(bob)))
    await socket.send_json_to({"action": "ping"})
    assert await receive(socket) == {"type": "pong"}

    await in_thread(WAYS[way])(bob)

    assert await closed_code(socket) == 4401


async def test_a_bulk_deactivation_closes_the_socket_within_10_seconds(connect):
    bob = await in_thread(UserFactory)(username="bob")
    socket = await connect(token=str(AccessToken.for_user(bob)))
    await socket.send_json_to({"action": "ping"})
    assert await receive(socket) == {"type": "pong"}

    started = time.monotonic()
    await in_thread(lambda: User.objects.filter(pk=bob.pk).update(is_active=False))()
    closed = await socket.receive_output(timeout=10)

    assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
    assert time.monotonic() - started < 10


async def test_under_the_services_lifespan_a_bulk_deactivation_closes_the_socket_at_once(
    application, connect, monkeypatch
):
    monkeypatch.setattr(fanout, "ACTIVE_CHECK_SECONDS", 60)  # the next round: too late
    lifespan = ApplicationCommunicator(application, {"type": "lifespan"})
    await lifespan.send_input({"type": "lifespan.startup"})
    assert await lifespan.receive_output(TIMEOUT) == {"type": "lifespan.startup.complete"}
    for _ in range(100):
        if await in_thread(listening)():
            break
        await asyncio.sleep(0.05)
    bob = await in_thread(UserFactory)(username="bob")
    socket = await connect(token=str(AccessToken.for_user(bob)))
    await socket.send_json_to({"action": "ping"})
    assert await receive(socket) == {"type": "pong"}

    await in_thread(lambda: User.objects.filter(pk=bob.pk).update(is_active=False))()

    assert await closed_code(socket) == 4401  # told by the database, within TIMEOUT, not 60 s
    await lifespan.send_input({"type": "lifespan.shutdown"})
    assert await lifespan.receive_output(TIMEOUT) == {"type": "lifespan.shutdown.complete"}


async def test_only_the_sockets_of_tokens_before_a_password_change_close(connect, monkeypatch):
    monkeypatch.setattr(fanout, "ACTIVE_CHECK_SECONDS", 0.2)
    bob = await in_thread(UserFactory)(username="bob")
    stale = str(AccessToken.for_user(bob))
    old = await connect(token=stale)

    await in_thread(_set_password_and_save)(bob)
    new = await connect(token=str(AccessToken.for_user(bob)))  # the new password's token
    refused = await connect(token=stale)

    assert await closed_code(refused) == 4401  # at once, at the handshake
    assert await closed_code(old) == 4401
    await new.send_json_to({"action": "ping"})
    assert await receive(new) == {"type": "pong"}
