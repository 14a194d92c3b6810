"""Fixtures for talking to the realtime app over real Redis pub/sub and PostgreSQL."""

import contextlib
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from common.tests.factories import UserFactory

TIMEOUT = 5  # seconds any single expected message may take


@pytest.fixture
def user(transactional_db):
    return UserFactory(username="alice")


@pytest.fixture
def token(user) -> str:
    return str(AccessToken.for_user(user))


@pytest.fixture
def application():
    from realtime.handler import application

    return application


@pytest.fixture
async def connect(application, token):
    """Open sockets as `await connect(query="projects=1", token=...)`; all closed at the end."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(query: str = "", *, token: str | None = token, headers=()):
        path = "/ws/notifications/?" + "&".join(
            p for p in (f"token={token}" if token else "", query) if p
        )
        communicator = WebsocketCommunicator(application, path, headers=list(headers))
        opened.append(communicator)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        return communicator

    yield open_socket
    for communicator in opened:
        with contextlib.suppress(Exception):
            await communicator.disconnect(timeout=TIMEOUT)


async def receive(communicator: WebsocketCommunicator) -> dict:
    return await communicator.receive_json_from(timeout=TIMEOUT)


def expired_token(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


in_thread = database_sync_to_async
