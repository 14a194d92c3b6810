"""Login and write limits (CONTRACT section 1, "Concurrency, retries and limits"), on real Redis.

The limits' clock is moved by the tests (common.infra.limits.clock): each window's end is
reached without waiting for it.
"""

import threading

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from common.api import limits as api_limits
from common.infra import limits
from common.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there
T0 = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(limits, "clock", clock)
    return clock


@pytest.fixture
def auth(settings) -> APIClient:
    settings.ROOT_URLCONF = "functions.auth.urls"
    return APIClient()


@pytest.fixture
def alice():
    return UserFactory(username="alice")  # password: pass-word-1


def login(client: APIClient, password: str, username: str = "alice", **extra):
    body = {"username": username, "password": password}
    return client.post("/auth/token/", body, format="json", **extra)


# -- per username -------------------------------------------------------------------------------


def test_the_fifth_failure_is_401_the_sixth_429_with_retry_after_a_right_password_too(
    auth, alice, clock
):
    failures = [login(auth, "wrong").status_code for _ in range(5)]
    sixth = login(auth, "wrong")
    right = login(auth, "pass-word-1")

    assert failures == [401] * 5
    assert (sixth.status_code, sixth["Retry-After"]) == (429, "900")
    assert sixth.json() == {"detail": "Request was throttled. Expected available in 900 seconds."}
    assert (right.status_code, right["Retry-After"]) == (429, "900")
    assert "access" not in right.json()


def test_the_lock_lasts_until_the_window_passes(auth, alice, clock):
    for _ in range(5):
        login(auth, "wrong")

    clock.now = T0 + 899
    almost = login(auth, "pass-word-1")
    clock.now = T0 + 900
    passed = login(auth, "pass-word-1")

    assert (almost.status_code, almost["Retry-After"]) == (429, "1")
    assert passed.status_code == 200


def test_the_window_slides_with_the_failures(auth, alice, clock):
    login(auth, "wrong")
    clock.now = T0 + 600
    for _ in range(4):
        login(auth, "wrong")
    refused = login(auth, "wrong")
    clock.now = T0 + 900  # the first failure has left the window: one place is free again
    one_more = login(auth, "wrong")
    refused_again = login(auth, "pass-word-1")

    assert (refused.status_code, refused["Retry-After"]) == (429, "300")
    assert one_more.status_code == 401
    assert (refused_again.status_code, refused_again["Retry-After"]) == (429, "600")


def test_a_right_password_and_a_malformed_body_are_not_failures(auth, alice, clock):
    for _ in range(4):
        assert login(auth, "wrong").status_code == 401
    assert login(auth, "pass-word-1").status_code == 200
    for _ in range(10):
        assert auth.post("/auth/token/", {"username": "alice"}, format="json").status_code == 400
    fifth = login(auth, "wrong")
    sixth = login(auth, "pass-word-1")

    assert fifth.status_code == 401
    assert sixth.status_code == 429


def test_a_locked_username_does_not_lock_another(auth, alice, clock):
    UserFactory(username="bob")
    for _ in range(6):
        login(auth, "wrong")

    assert login(auth, "pass-word-1", username="bob").status_code == 200


def test_concurrent_guesses_cannot_slip_past_the_count(settings, alice, clock):
    settings.ROOT_URLCONF = "functions.auth.urls"
    answers: list[int] = []
    start = threading.Barrier(20)

    def guess() -> None:
        start.wait()
        try:
            answers.append(login(APIClient(), "wrong").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) == [401] * 5 + [429] * 15


# -- per client address -------------------------------------------------------------------------


def test_thirty_failures_a_minute_from_one_address_lock_it_for_every_username(auth, clock):
    first = [login(auth, "x", username=f"user{n}").status_code for n in range(30)]
    locked = login(auth, "x", username="someone-else")
    elsewhere = login(auth, "x", username="someone-else", REMOTE_ADDR="192.0.2.7")
    clock.now = T0 + 60
    later = login(auth, "x", username="someone-else")

    assert first == [401] * 30
    assert (locked.status_code, locked["Retry-After"]) == (429, "60")
    assert elsewhere.status_code == 401
    assert later.status_code == 401


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(auth, clock):
    for n in range(30):
        login(auth, "x", username=f"user{n}", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

    spoofed = login(auth, "x", username="other", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert spoofed.status_code == 429


def test_behind_one_trusted_proxy_the_address_is_the_one_it_saw(auth, settings, clock):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(30):  # the client makes up the left part; the proxy appends what it saw
        login(auth, "x", username=f"user{n}", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.5")

    same_client = login(auth, "x", username="other", HTTP_X_FORWARDED_FOR="203.0.113.5")
    another = login(auth, "x", username="other", HTTP_X_FORWARDED_FOR="203.0.113.6")

    assert same_client.status_code == 429
    assert another.status_code == 401


def test_the_client_address_counts_trusted_proxies_from_the_right(rf, settings):
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 1.1.1.1, 2.2.2.2", REMOTE_ADDR="3.3.3.3")

    addresses = {}
    for count in (0, 1, 2, 3, 4):
        settings.TRUSTED_PROXY_COUNT = count
        addresses[count] = api_limits.client_address(request)

    assert addresses == {0: "3.3.3.3", 1: "2.2.2.2", 2: "1.1.1.1", 3: "6.6.6.6", 4: "6.6.6.6"}


# -- Redis down ---------------------------------------------------------------------------------


def test_with_redis_down_logins_are_refused_503_fail_closed(auth, alice, settings):
    settings.CACHE_REDIS_URL = CLOSED_REDIS

    refused = login(auth, "pass-word-1")

    assert (refused.status_code, refused["Retry-After"]) == (503, "5")
    assert "access" not in refused.json()


# -- writes -------------------------------------------------------------------------------------


@pytest.fixture
def api(settings, alice) -> APIClient:
    settings.ROOT_URLCONF = "functions.projects.urls"
    settings.API_WRITE_RATE = 3
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(alice)}")
    return client


def create(client: APIClient, name: str = "p"):
    return client.post("/projects/", {"name": name}, format="json")


def test_writes_past_api_write_rate_are_429_reads_are_not(api, clock):
    created = [create(api).status_code for _ in range(3)]
    fourth = create(api)
    clock.now = T0 + 30
    project = api.get("/projects/").json()["results"][0]["id"]
    patch = api.patch(f"/projects/{project}/", {"name": "q"}, format="json")
    reads = [api.get(f"/projects/{project}/").status_code for _ in range(50)]
    clock.now = T0 + 60
    after = create(api)

    assert created == [201] * 3
    assert (fourth.status_code, fourth["Retry-After"]) == (429, "60")
    assert (patch.status_code, patch["Retry-After"]) == (429, "30")
    assert set(reads) == {200}
    assert after.status_code == 201


def test_the_write_limit_is_per_user(api, clock):
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(UserFactory())}")
    for _ in range(4):
        create(api)

    assert create(bob).status_code == 201


def test_with_redis_down_writes_go_on_uncounted_fail_open(api, settings, monkeypatch):
    monkeypatch.setattr(api_limits.WriteRateLimit, "skip_until", 0.0)
    settings.CACHE_REDIS_URL = CLOSED_REDIS

    assert [create(api).status_code for _ in range(5)] == [201] * 5


def test_the_cached_hit_path_never_touches_the_limits(settings, alice):
    import httpx
    from asgiref.sync import async_to_sync

    from functions.tasks.handler import application

    settings.ALLOWED_HOSTS = ["testserver"]
    headers = {"Authorization": f"Bearer {AccessToken.for_user(alice)}"}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/tasks/", headers=headers)

    answers = [async_to_sync(get)().headers["x-cache"] for _ in range(5)]
    client = redis.Redis.from_url(django_settings.CACHE_REDIS_URL)
    limit_keys = list(client.scan_iter(match=f"{django_settings.REDIS_PREFIX}:limit:*"))

    assert answers == ["miss"] + ["hit"] * 4
    assert limit_keys == []
