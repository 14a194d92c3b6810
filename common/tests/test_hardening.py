"""Inputs that once answered 500 (found by fuzzing the API on PostgreSQL) now answer 4xx."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from common.domain.models import Task
from common.tests.base import APITest
from common.tests.factories import ProjectFactory, TaskFactory

DEEP = "[" * 5000 + "]" * 5000


@override_settings(ROOT_URLCONF="local.urls")
class ClientInputTests(APITest):
    def test_a_nul_in_the_assignee_is_a_400(self):
        task = TaskFactory(project__owner=self.user)
        for name in ("\x00", "alice\x00"):
            with self.subTest(name=name):
                response = self.client.patch(
                    f"/tasks/{task.id}/", {"assignee": name}, format="json"
                )
                self.assertEqual(response.status_code, 400)
                self.assertEqual(list(response.json()), ["assignee"])

    def test_a_project_id_that_is_not_an_integer_is_a_400(self):
        project = ProjectFactory(owner=self.user)
        for raw in ("1e400", "-1e400", f"{project.id}.7", "true"):
            with self.subTest(raw=raw):
                body = f'{{"project": {raw}, "title": "t", "due_date": "2030-01-01T00:00:00Z"}}'
                response = self.client.post("/tasks/", body, content_type="application/json")
                self.assertEqual(response.status_code, 400)
                self.assertEqual(list(response.json()), ["project"])
        self.assertFalse(Task.objects.exists())

    def test_due_filters_take_any_offset_the_parser_reads(self):
        TaskFactory(project__owner=self.user)
        for query in (
            "due_before=2030-01-01T00:00:00%2B16:00",
            "due_after=2000-01-01T00:00:00-23:59",
        ):
            with self.subTest(query=query):
                self.assertEqual(self.client.get(f"/tasks/?{query}").status_code, 200)

    def test_due_filters_past_the_calendar_are_a_400(self):
        for query in (
            "due_before=9999-12-31T23:59:59-01:00",
            "due_after=0001-01-01T00:00:00%2B00:01",
        ):
            with self.subTest(query=query):
                response = self.client.get(f"/tasks/?{query}")
                self.assertEqual(response.status_code, 400)

    def test_json_nested_too_deeply_is_a_400(self):
        for path in ("/projects/", "/auth/token/"):
            with self.subTest(path=path):
                response = self.client.post(path, DEEP, content_type="application/json")
                self.assertEqual(response.status_code, 400)
                self.assertEqual(
                    response.json(), {"detail": "JSON parse error - nested too deeply"}
                )


@override_settings(ROOT_URLCONF="local.urls")
class SignedNonsenseTests(APITest):
    """Tokens signed with our key but carrying claims no server would issue."""

    def test_an_access_token_with_a_nonsense_user_id_or_exp_is_a_401(self):
        for claim, value in (("user_id", "abc"), ("user_id", [1]), ("exp", 10**30)):
            token = AccessToken.for_user(self.user)
            token[claim] = value
            with self.subTest(claim=claim, value=value):
                self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
                self.assertEqual(self.client.get("/projects/").status_code, 401)

    def test_a_refresh_token_with_a_nonsense_user_id_is_a_401(self):
        from rest_framework_simplejwt.tokens import RefreshToken

        token = RefreshToken.for_user(self.user)
        token["user_id"] = "\x00"

        response = self.client.post("/auth/token/refresh/", {"refresh": str(token)}, format="json")

        self.assertEqual(response.status_code, 401)


def _asgi_post(app, chunks: list[bytes], token: str) -> tuple[int, dict]:
    """POST /projects/ as a chunked body: no Content-Length, the body in several messages."""
    status, body, _, _ = _asgi_call(app, chunks, token)
    return status, body


def _asgi_call(app, chunks: list[bytes], token: str, headers=()) -> tuple[int, dict, dict, int]:
    """POST /projects/ in body messages: status, body, headers, messages left unread."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/projects/",
        "raw_path": b"/projects/",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[dict] = []

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        return await asyncio.Future()  # no disconnect: Django stops listening once it answered

    async def send(message: dict) -> None:
        sent.append(message)

    async_to_sync(app)(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body), dict(sent[0]["headers"]), len(messages)


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_read(django_user_model):
    from common.infra.asgi import function_application

    app = function_application("functions.projects.urls")  # without the cache front
    token = str(AccessToken.for_user(django_user_model.objects.create_user(username="c")))

    status, body = _asgi_post(app, [b'{"name": ', b'"Chunked"}'], token)

    assert (status, body["name"]) == (201, "Chunked")


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_the_limit_is_a_413(django_user_model):
    from common.infra.asgi import function_application

    app = function_application("functions.projects.urls")
    token = str(AccessToken.for_user(django_user_model.objects.create_user(username="c")))

    status, body = _asgi_post(app, [b'{"name": "' + b"x" * 600_000, b"x" * 600_000 + b'"}'], token)

    assert (status, body) == (413, {"detail": "Request body over 1048576 bytes."})


@pytest.mark.django_db(transaction=True)
def test_a_declared_body_over_the_limit_is_a_413_before_any_of_it_is_read(django_user_model):
    from common.infra.asgi import function_application

    app = function_application("functions.projects.urls")
    token = str(AccessToken.for_user(django_user_model.objects.create_user(username="c")))
    declared = [(b"content-length", b"%d" % (1024 * 1024 + 1))]

    status, body, headers, unread = _asgi_call(app, [b"x" * 1024], token, declared)

    assert (status, body) == (413, {"detail": "Request body over 1048576 bytes."})
    assert unread == 2  # neither the chunk nor the end of the body was asked for
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"referrer-policy"] == b"same-origin"


@pytest.mark.django_db(transaction=True)
def test_a_content_length_that_is_not_a_length_is_a_400(django_user_model):
    from common.infra.asgi import function_application

    app = function_application("functions.projects.urls")
    token = str(AccessToken.for_user(django_user_model.objects.create_user(username="c")))

    status, body, _, _ = _asgi_call(app, [b"{}"], token, [(b"content-length", b"-1")])

    assert (status, body) == (400, {"detail": "Invalid Content-Length header."})
