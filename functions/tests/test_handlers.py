"""Each function's Lambda handler, driven by API Gateway v2, v1 and ALB events.

Each answers its own paths and /healthz, and 404 for every other function's paths.
"""

import importlib
import json

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from common.domain.models import Project
from common.tests.factories import TaskFactory, UserFactory
from functions.tests.events import EVENT_KINDS

OWN_LIST = {
    "projects": "/projects/",
    "tasks": "/tasks/",
    "comments": "/tasks/{task}/comments/",
    "auth": "/auth/me/",
}

# What each own list holds once one task (in one project) exists, and who /auth/me/ is.
EXPECTED = {"projects": 1, "tasks": 1, "comments": 0, "auth": "alice"}

pytestmark = pytest.mark.django_db(transaction=True)


class Context:
    """The little of a Lambda context that Mangum reads."""

    function_name = "taskwire-test"
    aws_request_id = "req-1"


def call(function: str, event: dict) -> tuple[int, dict]:
    handler = importlib.import_module(f"functions.{function}.handler").handler
    answer = handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"]) if answer["body"] else {}


@pytest.fixture(autouse=True)
def _api_gateway_host(settings):
    settings.ALLOWED_HOSTS = ["api.example.com"]  # the events' Host, as a deployment would set it


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def bearer(alice):
    return {"authorization": f"Bearer {AccessToken.for_user(alice)}"}


@pytest.mark.parametrize("kind", EVENT_KINDS)
@pytest.mark.parametrize("function", OWN_LIST)
def test_a_function_answers_its_own_list_and_health(function, kind, bearer, alice):
    task = TaskFactory(project__owner=alice)
    make = EVENT_KINDS[kind]

    status, body = call(
        function, make("GET", OWN_LIST[function].format(task=task.id), headers=bearer)
    )
    health_status, health = call(function, make("GET", "/healthz"))

    assert status == 200, body
    assert body.get("count", body.get("username")) == EXPECTED[function]
    assert (health_status, health) == (200, {"status": "ok"})


@pytest.mark.parametrize("kind", EVENT_KINDS)
@pytest.mark.parametrize("function", OWN_LIST)
def test_a_function_answers_404_for_the_other_functions_paths(function, kind, bearer):
    task = TaskFactory()
    make = EVENT_KINDS[kind]

    for other, path in OWN_LIST.items():
        if other != function:
            status, body = call(function, make("GET", path.format(task=task.id), headers=bearer))
            assert (status, body) == (404, {"detail": "Not found."}), (other, path)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_a_write_through_each_event_kind_reads_its_json_body(kind, bearer):
    make = EVENT_KINDS[kind]

    status, body = call(
        "projects", make("POST", "/projects/", headers=bearer, body={"name": "Lambda"})
    )

    assert status == 201, body
    assert body["name"] == "Lambda"
    assert body["owner"] == "alice"
    assert Project.objects.get().name == "Lambda"


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_query_strings_reach_the_filters(kind, bearer, alice):
    TaskFactory(project__owner=alice, status="completed")
    TaskFactory(project__owner=alice, status="pending")

    status, body = call(
        "tasks", EVENT_KINDS[kind]("GET", "/tasks/", query="status=completed", headers=bearer)
    )

    assert status == 200
    assert [task["status"] for task in body["results"]] == ["completed"]


def test_tokens_are_issued_through_the_auth_handler():
    UserFactory(username="bob")

    status, body = call(
        "auth",
        EVENT_KINDS["http_api_v2"](
            "POST", "/auth/token/", body={"username": "bob", "password": "pass-word-1"}
        ),
    )

    assert status == 200
    assert set(body) == {"access", "refresh"}


@pytest.mark.parametrize("function", ["projects", "tasks", "comments", "auth"])
def test_a_function_starts_without_the_libraries_it_needs_only_later(function):
    """What a function imports at start counts against every cold start (bench cold_start)."""
    import os
    import subprocess
    import sys

    # The email and job libraries; Redis's client, imported by the cache's store and the event
    # push at their first use; simplejwt, whose settings import django.test, at the first
    # request that authenticates (common.api.authentication) or reaches one of the auth
    # function's views (its urlconf's LazyView); the blacklist app's models load with the apps,
    # but not simplejwt's settings. Local mode: no Redis configured.
    heavy = ("botocore", "boto3", "celery", "django_ses", "redis", "opentelemetry")
    heavy += ("rest_framework_simplejwt.settings", "rest_framework_simplejwt.views")
    heavy += ("django.test", "jwt", "drf_spectacular.utils")
    no_redis = {"REDIS_URL": "", "CACHE_REDIS_URL": "", "CHANNEL_REDIS_URL": ""}
    env = {**os.environ, **no_redis, "DEBUG": "true"}
    env["DJANGO_SETTINGS_MODULE"] = "common.infra.settings"
    probe = (
        f"import functions.{function}.handler, sys; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
