"""Tokens end: rotation, logout, and a password change or deactivation however it is made.

Every request goes through the functions' whole ASGI applications, so a cached list read is
answered by the hit path in front of Django, as deployed. Each user signs in through
/auth/token/ as a client does.
"""

import asyncio
import threading
import time

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test import Client

from common.domain import services
from common.infra.cache import keys, store
from common.infra.cache.pages import ACTIVE_USER_SECONDS
from common.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


@pytest.fixture(autouse=True)
def _hosts(settings):
    settings.ALLOWED_HOSTS = ["testserver"]


def call(method: str, path: str, *, token: str | None = None, json=None) -> httpx.Response:
    from functions.auth.handler import application as auth
    from functions.tasks.handler import application as tasks

    app = auth if path.startswith("/auth/") else tasks
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, headers=headers, json=json)

    return async_to_sync(send)()


PASSWORD = "pass-word-1"  # the factory's


def sign_in(username: str = "alice", password: str = PASSWORD) -> dict:
    answer = call("POST", "/auth/token/", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.content
    return answer.json()


def refresh(token: str) -> httpx.Response:
    return call("POST", "/auth/token/refresh/", json={"refresh": token})


# -- rotation and logout ------------------------------------------------------------------------


def test_a_refresh_answers_a_new_pair_and_revokes_the_refresh_token_it_was_given():
    UserFactory(username="alice")
    first = sign_in()

    rotated = refresh(first["refresh"])
    reused = refresh(first["refresh"])
    again = refresh(rotated.json()["refresh"])

    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first["refresh"]
    assert call("GET", "/auth/me/", token=rotated.json()["access"]).status_code == 200
    assert reused.status_code == 401
    assert again.status_code == 200


def test_two_concurrent_refreshes_with_one_token_get_one_new_pair():
    UserFactory(username="alice")
    token = sign_in()["refresh"]
    answers: list[int] = []
    start = threading.Barrier(4)

    def use() -> None:
        start.wait()
        try:
            answers.append(refresh(token).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) == [200, 401, 401, 401]


def test_logout_revokes_the_refresh_token():
    UserFactory(username="alice")
    tokens = sign_in()

    out = call("POST", "/auth/logout/", json={"refresh": tokens["refresh"]})
    after = refresh(tokens["refresh"])
    twice = call("POST", "/auth/logout/", json={"refresh": tokens["refresh"]})

    assert (out.status_code, out.content) == (204, b"")
    assert after.status_code == 401
    assert twice.status_code == 401


def test_logout_with_a_bad_token_is_401_and_without_one_400():
    user = UserFactory(username="alice")
    from rest_framework_simplejwt.tokens import AccessToken

    for body, status in (
        ({"refresh": "nonsense"}, 401),
        ({"refresh": str(AccessToken.for_user(user))}, 401),
        ({}, 400),
    ):
        assert call("POST", "/auth/logout/", json=body).status_code == status


# -- a password change or a deactivation, however it is made ------------------------------------


def _admin(settings) -> Client:
    settings.ROOT_URLCONF = "functions.admin.urls"
    admin = Client()
    admin.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))
    return admin


def _admin_deactivate(user, settings) -> None:
    form = {
        "username": user.username,
        "email": user.email,
        "is_active": "",
        "date_joined_0": user.date_joined.date().isoformat(),
        "date_joined_1": user.date_joined.time().strftime("%H:%M:%S"),
    }
    saved = _admin(settings).post(f"/admin/auth/user/{user.pk}/change/", form)
    assert saved.status_code == 302, saved.content


def _admin_password(user, settings) -> None:
    form = {"usable_password": "true", "password1": "new-pass-2", "password2": "new-pass-2"}
    saved = _admin(settings).post(f"/admin/auth/user/{user.pk}/password/", form)
    assert saved.status_code == 302, saved.content


def _save_inactive(user, settings) -> None:
    user.is_active = False
    user.save()


def _set_password_and_save(user, settings) -> None:
    user.set_password("new-pass-2")
    user.save()


WAYS = {
    "deactivate: admin": _admin_deactivate,
    "deactivate: save()": _save_inactive,
    "deactivate: service": lambda user, settings: services.user_deactivate(user=user),
    "deactivate: bulk update()": lambda user, settings: User.objects.filter(pk=user.pk).update(
        is_active=False
    ),
    "delete": lambda user, settings: user.delete(),
    "delete: service": lambda user, settings: services.user_delete(user=user),
    "password: admin": _admin_password,
    "password: set_password() and save()": _set_password_and_save,
    "password: service": lambda user, settings: services.user_update(
        user=user, password=make_password("new-pass-2")
    ),
    "password: bulk update()": lambda user, settings: User.objects.filter(pk=user.pk).update(
        password=make_password("new-pass-2")
    ),
}


@pytest.mark.parametrize("way", WAYS)
def test_every_token_of_the_user_ends_on_rest_and_on_the_cached_hit_path(
    way, settings, user_changes_followed
):
    user = UserFactory(username="alice")
    tokens = sign_in()
    reads = [call("GET", "/tasks/", token=tokens["access"]) for _ in range(2)]

    WAYS[way](user, settings)
    if "bulk" in way:  # no signal: the database's trigger tells the follower, which forgets
        _until_gone(keys.active_user_name(user.pk))
    listed = call("GET", "/tasks/", token=tokens["access"])
    me = call("GET", "/auth/me/", token=tokens["access"])
    refreshed = refresh(tokens["refresh"])

    assert [read.headers["x-cache"] for read in reads] == ["miss", "hit"]
    assert (listed.status_code, listed.headers.get("x-cache")) == (401, None)
    assert me.status_code == 401
    assert refreshed.status_code == 401


def _until_gone(name: str) -> None:
    """Wait for the follower (a notification's way: milliseconds) to delete the key."""
    deadline = time.monotonic() + 5
    while store.store().client.exists(_stored(name)):
        assert time.monotonic() < deadline, f"{name} still there"
        time.sleep(0.01)


def test_without_the_follower_a_bulk_deactivation_lapses_the_hit_path_by_itself():
    user = UserFactory(username="alice")
    tokens = sign_in()
    call("GET", "/tasks/", token=tokens["access"])

    User.objects.filter(pk=user.pk).update(is_active=False)

    vouch = store.store().client.pttl(_stored(keys.active_user_name(user.pk)))
    assert 0 < vouch <= ACTIVE_USER_SECONDS * 1000


def _stored(name: str) -> str:
    redis_store = store.store()
    return f"{redis_store.prefix}:{redis_store.generation}:{name}"


def test_after_a_password_change_a_new_sign_in_works_and_the_old_token_gets_no_hit():
    user = UserFactory(username="alice")
    old = sign_in()
    call("GET", "/tasks/", token=old["access"])

    _set_password_and_save(user, None)
    new = sign_in(password="new-pass-2")
    fresh = [call("GET", "/tasks/", token=new["access"]) for _ in range(2)]  # vouched again
    stale = call("GET", "/tasks/", token=old["access"])

    assert [(r.status_code, r.headers["x-cache"]) for r in fresh] == [(200, "hit"), (200, "hit")]
    assert stale.status_code == 401


def test_a_deactivated_user_activated_again_has_no_refresh_token_left():
    user = UserFactory(username="alice")
    tokens = sign_in()

    services.user_deactivate(user=user)
    services.user_update(user=user, is_active=True)

    assert refresh(tokens["refresh"]).status_code == 401
    assert sign_in()["refresh"]


def test_a_vouch_due_for_renewal_sends_one_read_to_django_which_vouches_again(monkeypatch):
    from common.infra.cache import frontend

    monkeypatch.setattr(frontend, "_renewals", {})
    user = UserFactory(username="alice")
    token = sign_in()["access"]
    call("GET", "/tasks/", token=token)
    name = _stored(keys.active_user_name(user.pk))
    client = store.store().client
    claim, renew_at, memberships = client.get(name).split(b"|", 2)
    client.set(name, b"|".join([claim, b"1", memberships]), ex=3)  # due since 1970, lapsing

    from common.infra.cache import pages

    vouches: list[object] = []
    remember = pages._remember_active
    monkeypatch.setattr(pages, "_remember_active", lambda *a: vouches.append(a) or remember(*a))
    reads = [call("GET", "/tasks/", token=token) for _ in range(3)]
    renewed = client.get(name).split(b"|", 2)

    assert [(r.status_code, r.headers["x-cache"]) for r in reads] == [(200, "hit")] * 3
    assert int(renewed[1]) >= int(renew_at)
    assert client.pttl(name) > 3000  # Django set it again: ACTIVE_USER_SECONDS
    assert len(vouches) == 1  # one read went to Django; the others were answered in front


def calls_at_once(count: int, path: str, token: str) -> list[httpx.Response]:
    """`count` GETs of `path` in flight together, on one event loop, as one process serves them."""
    from functions.tasks.handler import application as tasks

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=tasks)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = {"Authorization": f"Bearer {token}"}
            return await asyncio.gather(*(client.get(path, headers=headers) for _ in range(count)))

    return async_to_sync(send)()


def _counting_vouches(monkeypatch) -> list[object]:
    from common.infra.cache import pages

    vouches: list[object] = []
    remember = pages._remember_active
    monkeypatch.setattr(pages, "_remember_active", lambda *a: vouches.append(a) or remember(*a))
    return vouches


def test_reads_at_once_after_the_vouch_lapsed_send_one_to_django_and_the_rest_are_hits(
    monkeypatch,
):
    user = UserFactory(username="alice")
    token = sign_in()["access"]
    call("GET", "/tasks/", token=token)  # the page is cached
    store.store().client.delete(_stored(keys.active_user_name(user.pk)))  # lapsed
    vouches = _counting_vouches(monkeypatch)

    reads = calls_at_once(8, "/tasks/", token)

    assert [(r.status_code, r.headers["x-cache"]) for r in reads] == [(200, "hit")] * 8
    assert len(vouches) == 1  # one read went to Django; the others waited for its vouch


def test_reads_at_once_of_a_deactivated_user_are_each_refused_by_django(monkeypatch):
    user = UserFactory(username="alice")
    token = sign_in()["access"]
    call("GET", "/tasks/", token=token)
    services.user_deactivate(user=user)  # the vouch goes with it
    vouches = _counting_vouches(monkeypatch)

    reads = calls_at_once(4, "/tasks/", token)

    assert [r.status_code for r in reads] == [401] * 4  # none waited for a vouch forever
    assert vouches == []
