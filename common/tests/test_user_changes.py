"""The user table's trigger (migration 0010) and its follower (common.infra.user_changes)."""

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from common.infra import user_changes
from common.infra.cache import keys, store
from common.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()

CHANGES = {
    "deactivated: bulk update()": (lambda user: _update(user, is_active=False), True),
    "new password: bulk update()": (lambda user: _update(user, password=make_password("x")), True),
    "deleted: raw": (lambda user: User.objects.filter(pk=user.pk).delete(), True),
    "deactivated: save()": (lambda user: _save(user, is_active=False), True),
    "signed in (last_login)": (lambda user: _update(user, last_login=timezone.now()), False),
    "renamed": (lambda user: _update(user, email="new@example.com"), False),
    "same password again": (lambda user: _update(user, password=user.password), False),
}


def _update(user, **fields) -> None:
    User.objects.filter(pk=user.pk).update(**fields)


def _save(user, **fields) -> None:
    for name, value in fields.items():
        setattr(user, name, value)
    user.save()


@pytest.mark.parametrize("change", CHANGES)
def test_the_trigger_names_the_user_whose_tokens_end_and_no_one_else(change):
    user = UserFactory(username="alice")
    make, notifies = CHANGES[change]
    listener = psycopg.connect(user_changes._conninfo(), autocommit=True)
    listener.execute(f'LISTEN "{user_changes.CHANNEL}"')

    make(user)
    heard = [n.payload for n in listener.notifies(timeout=1 if notifies else 0.3, stop_after=1)]
    listener.close()

    assert heard == ([str(user.pk)] if notifies else [])


def test_an_activation_notifies_nothing():
    user = UserFactory(username="alice", is_active=False)
    listener = psycopg.connect(user_changes._conninfo(), autocommit=True)
    listener.execute(f'LISTEN "{user_changes.CHANNEL}"')

    _update(user, is_active=True)

    assert list(listener.notifies(timeout=0.3)) == []
    listener.close()


def test_a_bulk_deactivation_revokes_the_refresh_tokens_and_an_activation_does_not_revive_them():
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    tokens = [RefreshToken.for_user(user) for user in (alice, alice, bob)]  # each outstanding

    _update(alice, is_active=False)
    _update(alice, is_active=True)

    revoked = set(BlacklistedToken.objects.values_list("token__jti", flat=True))
    assert revoked == {tokens[0]["jti"], tokens[1]["jti"]}


def test_the_follower_forgets_every_user_of_a_bulk_deactivation(user_changes_followed):
    users = [UserFactory(username=f"user{i}") for i in range(3)]
    names = [keys.active_user_name(user.pk) for user in users]
    for name in names:
        store.store().set(name, b"vouched", 60)

    User.objects.filter(pk__in=[user.pk for user in users[:2]]).update(is_active=False)

    _wait_for(lambda: store.store().get_many(names[:2]) == [None, None])
    assert store.store().get_many(names[2:]) == [b"vouched"]


def _wait_for(condition) -> None:
    import time

    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


async def test_the_follower_outlives_a_database_it_cannot_reach(monkeypatch, caplog):
    import asyncio
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(user_changes, "_conninfo", lambda: f"host=127.0.0.1 port={port}")
    monkeypatch.setattr(user_changes, "RECONNECT_SECONDS", (0.05,))

    follower = asyncio.create_task(user_changes.follow())
    await asyncio.sleep(1)
    running = not follower.done()
    follower.cancel()

    assert running
    attempts = [r for r in caplog.records if "not listening, again in" in r.getMessage()]
    assert len(attempts) >= 2
