"""What a hostile or careless client can no longer do to the list cache, and how Redis is run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from asgiref.sync import async_to_sync
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from common.infra.asgi import function_application
from common.tests.base import APITest
from common.tests.factories import TaskFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]


def stored_keys(kind: str) -> list[bytes]:
    """This run's keys of one kind (`pages`, `version`, ...), straight from Redis."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        pattern = f"{os.environ['REDIS_PREFIX']}:*{kind}:*"
        return list(client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


def raw_value(key: bytes) -> bytes:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        return client.get(key)
    finally:
        client.close()


@override_settings(ROOT_URLCONF="local.urls", ALLOWED_HOSTS=["testserver", "other.example"])
class ListCacheKeyTests(APITest):
    def get(self, path: str, **extra):
        response = self.client.get(path, **extra)
        self.assertEqual(response.status_code, 200, response.content)
        return response

    def test_parameters_the_list_does_not_read_share_one_page(self):
        TaskFactory.create_batch(2, project__owner=self.user)
        first = self.get("/tasks/?page_size=1&junk=a")
        again = self.get("/tasks/?junk=b&page_size=1&other=c")

        self.assertEqual((first["X-Cache"], again["X-Cache"]), ("miss", "hit"))
        self.assertEqual(len(stored_keys("pages")), 1)
        self.assertEqual(first.json()["next"], "http://testserver/tasks/?page=2&page_size=1")
        self.assertEqual(again.content, first.content)

    def test_the_order_of_parameters_does_not_make_another_page(self):
        TaskFactory(project__owner=self.user, status="pending")
        first = self.get("/tasks/?status=pending&ordering=-id")
        again = self.get("/tasks/?ordering=-id&status=pending")

        self.assertEqual((first["X-Cache"], again["X-Cache"]), ("miss", "hit"))

    def test_what_changes_the_bytes_stays_in_the_key(self):
        TaskFactory.create_batch(2, project__owner=self.user)
        here = self.get("/tasks/?page_size=1")
        other_host = self.get("/tasks/?page_size=1", HTTP_HOST="other.example")
        second_page = self.get("/tasks/?page_size=1&page=2")

        self.assertEqual([r["X-Cache"] for r in (here, other_host, second_page)], ["miss"] * 3)
        self.assertEqual(
            other_host.json()["next"], "http://other.example/tasks/?page=2&page_size=1"
        )

    @override_settings(CACHE_PAGE_MAX_BYTES=2048)
    def test_a_page_over_the_size_cap_is_served_but_not_cached(self):
        TaskFactory(project__owner=self.user, description="x" * 4096)
        big = [self.get("/tasks/")["X-Cache"] for _ in range(2)]
        small = [self.get("/projects/")["X-Cache"] for _ in range(2)]

        self.assertEqual(big, ["miss", "miss"])
        self.assertEqual(small, ["miss", "hit"])
        self.assertEqual(len(stored_keys("pages")), 1)  # the projects' page only

    def test_a_request_that_fails_writes_no_key(self):
        for path in ("/tasks/?project=987654321", "/tasks/?status=nope", "/tasks/?page=9"):
            with self.subTest(path):
                self.assertIn(self.client.get(path).status_code, (400, 404))
                self.assertEqual(stored_keys(""), [])

    def test_pages_are_stored_as_their_raw_bytes_never_pickled(self):
        TaskFactory(project__owner=self.user)
        served = self.get("/tasks/")

        [key] = stored_keys("pages")
        head, _, page = raw_value(key).partition(b"\n")
        built_at, _, tag = head.partition(b" ")
        self.assertTrue(built_at.isdigit())
        self.assertEqual(tag.decode(), served["ETag"])
        self.assertEqual(page, served.content)


SECURITY_HEADERS = (
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "strict-transport-security",
)


def _get_twice(base_url: str, headers: dict) -> list[httpx.Response]:
    # A new application: Django's middleware reads its settings when the handler is made.
    application = function_application("functions.tasks.urls", cached_lists=("tasks",))

    async def get_twice() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            return [await client.get("/tasks/", headers=headers) for _ in range(2)]

    return async_to_sync(get_twice)()


def _security(response: httpx.Response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in SECURITY_HEADERS}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("base_url", "forwarded", "hsts"),
    [
        ("http://testserver", None, None),
        ("https://testserver", None, "max-age=3600; includeSubDomains; preload"),
        ("http://testserver", "https", "max-age=3600; includeSubDomains; preload"),
    ],
)
def test_a_hit_carries_the_security_headers_of_a_miss(settings, base_url, forwarded, hsts):
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_CONTENT_TYPE_NOSNIFF = True
    settings.SECURE_REFERRER_POLICY = "same-origin"
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    user = UserFactory()
    TaskFactory(project__owner=user)
    headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}
    if forwarded:
        headers["X-Forwarded-Proto"] = forwarded

    miss, hit = _get_twice(base_url, headers)

    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert _security(hit) == _security(miss)
    assert _security(hit) == {
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
        "strict-transport-security": hsts,
    }


def _compose_redis() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["redis"]


def test_compose_redis_has_a_memory_limit_with_an_eviction_policy_safe_for_versions():
    command = _compose_redis()["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))

    assert re.fullmatch(r"\$\{REDIS_MAXMEMORY:-\d+mb\}", options["--maxmemory"])
    # Any key may go, versions included: a version that is evicted restarts above every value
    # it had, and no write is ever refused for memory (noeviction would fail the bumps).
    assert options["--maxmemory-policy"] == "allkeys-lru"


def test_compose_redis_requires_a_password_that_every_url_carries():
    compose = (ROOT / "docker-compose.yml").read_text()
    redis_service = _compose_redis()
    app_env = yaml.safe_load(compose)["x-app"]["environment"]
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )

    assert example["REDIS_PASSWORD"] == ""
    uses = re.findall(r"\$\{REDIS_PASSWORD([^}]*)\}", compose)
    assert uses
    assert all(use.startswith(":?") for use in uses)
    assert "--requirepass" in redis_service["command"]
    for name in ("CACHE_REDIS_URL", "CHANNEL_REDIS_URL"):
        assert app_env[name].startswith("redis://:${REDIS_PASSWORD:?"), name
    assert app_env["CACHE_REDIS_URL"] != app_env["CHANNEL_REDIS_URL"]  # a database each


def _redis_settings(**env: str) -> list[str]:
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "print(settings.CACHES['default']['LOCATION']); "
        "print(settings.CHANNEL_REDIS_URL)"
    )
    base = {k: v for k, v in os.environ.items() if not k.endswith("REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "common.infra.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def test_the_cache_and_the_events_can_each_have_a_redis_database_of_their_own():
    shared = "redis://127.0.0.1:6379/0"

    assert _redis_settings(REDIS_URL=shared) == [shared, shared]
    assert _redis_settings(REDIS_URL=shared, CACHE_REDIS_URL="redis://127.0.0.1:6379/1") == [
        "redis://127.0.0.1:6379/1",
        shared,
    ]
    assert _redis_settings(REDIS_URL=shared, CHANNEL_REDIS_URL="redis://127.0.0.1:6379/2") == [
        shared,
        "redis://127.0.0.1:6379/2",
    ]
