"""What a hostile or careless client could break over HTTP, and now cannot (issue [1/7])."""

import json
import threading

import psycopg
import pytest
from django.db import connection
from django.test import TransactionTestCase, override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from common.api import health
from common.domain.models import TEXT_MAX_LENGTH, Comment, Project, Task
from common.tests.base import APITest
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory

SURROGATE = '"\\ud800"'  # a lone surrogate, as JSON writes it: valid JSON, no UTF-8 text

TASK_BODY = {
    "project": "{project}",
    "title": "T",
    "description": "d",
    "status": "pending",
    "assignee": "alice",
    "due_date": "2030-01-01T00:00:00Z",
}
# Every write that takes a JSON body, with a valid body to spoil one string field at a time.
WRITES = [
    ("post", "/projects/", {"name": "P", "description": "d"}),
    ("put", "/projects/{project}/", {"name": "P", "description": "d"}),
    ("patch", "/projects/{project}/", {"name": "P", "description": "d"}),
    ("post", "/tasks/", TASK_BODY),
    ("put", "/tasks/{task}/", TASK_BODY),
    ("patch", "/tasks/{task}/", {"title": "T", "status": "pending", "due_date": "2030-01-01"}),
    ("post", "/tasks/{task}/comments/", {"content": "c", "author": "alice"}),
    ("post", "/auth/token/", {"username": "alice", "password": "pass-word-1"}),
    ("post", "/auth/token/refresh/", {"refresh": "r"}),
]


def _state() -> list:
    return [
        list(Project.objects.values().order_by("id")),
        list(Task.objects.values().order_by("id")),
        list(Comment.objects.values().order_by("id")),
    ]


@override_settings(ROOT_URLCONF="local.urls")
class HostileBodyTests(APITest):
    def setUp(self):
        super().setUp()
        self.project = ProjectFactory(owner=self.user)
        self.task = TaskFactory(project=self.project)

    def _send(self, method: str, path: str, body: str):
        path = path.format(project=self.project.id, task=self.task.id)
        return getattr(self.client, method)(path, body, content_type="application/json")

    def test_a_lone_surrogate_in_any_string_field_of_any_write_is_a_400_and_changes_nothing(self):
        before = _state()
        for method, path, fields in WRITES:
            for name in fields:
                valid = {
                    key: value.format(project=self.project.id) for key, value in fields.items()
                }
                body = json.dumps({**valid, name: "<here>"}).replace('"<here>"', SURROGATE)
                with self.subTest(method=method, path=path, field=name):
                    response = self._send(method, path, body)
                    self.assertEqual(response.status_code, 400, response.content)
                    self.assertEqual(
                        response.json(),
                        {"detail": "JSON parse error - a string holds a lone surrogate"},
                    )
        self.assertEqual(_state(), before)

    def test_a_lone_surrogate_in_a_key_or_a_list_is_a_400(self):
        for body in ('{"\\udfff": 1, "name": "P"}', '{"name": ["\\ud800"]}'):
            with self.subTest(body=body):
                self.assertEqual(self._send("post", "/projects/", body).status_code, 400)

    def test_descriptions_and_comments_hold_at_most_65536_characters(self):
        longest, too_long = "x" * TEXT_MAX_LENGTH, "x" * (TEXT_MAX_LENGTH + 1)
        cases = [
            ("post", "/projects/", {"name": "P"}, "description"),
            ("patch", "/projects/{project}/", {}, "description"),
            ("post", "/tasks/", {"project": self.project.id, "title": "T",
                                 "due_date": "2030-01-01T00:00:00Z"}, "description"),
            ("patch", "/tasks/{task}/", {}, "description"),
            ("post", "/tasks/{task}/comments/", {}, "content"),
        ]  # fmt: skip
        for method, path, body, field in cases:
            with self.subTest(method=method, path=path, length="over"):
                before = _state()
                response = self._send(method, path, json.dumps({**body, field: too_long}))
                self.assertEqual(response.status_code, 400)
                self.assertEqual(
                    response.json(),
                    {field: [f"Ensure this field has no more than {TEXT_MAX_LENGTH} characters."]},
                )
                self.assertEqual(_state(), before)
            with self.subTest(method=method, path=path, length="at the limit"):
                response = self._send(method, path, json.dumps({**body, field: longest}))
                self.assertIn(response.status_code, (200, 201))
                self.assertEqual(len(response.json()[field]), TEXT_MAX_LENGTH)


@override_settings(ROOT_URLCONF="local.urls", DEBUG=True)
class JSONInEveryModeTests(APITest):
    """DEBUG (every `make run`) once answered Django's HTML pages for paths no route matches."""

    def test_ids_that_are_not_numbers_are_a_json_404_with_debug_on(self):
        for path in (
            "/tasks/abc/",
            "/projects/1e3/",
            "/projects/1e3/summaries/",
            "/tasks/abc/comments/",
            "/nowhere/",
        ):
            with self.subTest(path=path):
                response = self.client.get(path)
                self.assertEqual(response.status_code, 404)
                self.assertEqual(response["Content-Type"], "application/json")
                self.assertEqual(response.json(), {"detail": "Not found."})

    def test_a_host_not_allowed_is_a_json_400_with_debug_on(self):
        response = self.client.get("/projects/", HTTP_HOST="evil.example")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"detail": "Bad request."})


@override_settings(ROOT_URLCONF="local.urls")
class SecurityHeaderTests(APITest):
    def test_every_answer_says_nosniff_and_a_referrer_policy(self):
        for path in ("/projects/", "/tasks/999/", "/auth/me/", "/nowhere/"):
            with self.subTest(path=path):
                response = self.client.get(path)
                self.assertEqual(response["X-Content-Type-Options"], "nosniff")
                self.assertEqual(response["Referrer-Policy"], "same-origin")
                self.assertNotIn("Strict-Transport-Security", response)

    @override_settings(SECURE_HSTS_SECONDS=31536000, SECURE_PROXY_SSL_HEADER=None)
    def test_hsts_is_sent_over_tls_when_configured(self):
        response = self.client.get("/projects/", secure=True)

        self.assertEqual(response["Strict-Transport-Security"], "max-age=31536000")


@override_settings(ROOT_URLCONF="local.urls")
class DeletedUserTokenTests(APITest):
    def test_a_deleted_users_refresh_token_is_a_401(self):
        ghost = UserFactory(username="ghost")
        refresh = str(RefreshToken.for_user(ghost))
        ghost.delete()

        response = self.client.post("/auth/token/refresh/", {"refresh": refresh}, format="json")

        self.assertEqual(response.status_code, 401)
        self.assertEqual(
            response.json(), {"detail": "No active account found for the given token."}
        )


@override_settings(ROOT_URLCONF="local.urls")
class BusyDatabaseTests(TransactionTestCase):
    """A row lock held elsewhere, or a pool with no free connection, answers 503, never 500."""

    def setUp(self):
        self.user = UserFactory(username="alice")
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.user)}")
        self.locked, self.other = ProjectFactory(owner=self.user), ProjectFactory(owner=self.user)

    def _hold_row_lock(self, project: Project) -> psycopg.Connection:
        """Another session holds the project's row lock, as a stuck writer would."""
        settings = connection.settings_dict
        holder = psycopg.connect(
            host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
            dbname=settings["NAME"], autocommit=False,
        )  # fmt: skip
        holder.execute("SELECT 1 FROM common_project WHERE id = %s FOR UPDATE", [project.id])
        self.addCleanup(holder.close)
        return holder

    def test_a_write_waiting_on_a_held_lock_is_a_503_with_retry_after(self):
        self._hold_row_lock(self.locked)
        before = _state()

        with self.assertLogs("common.api.middleware", "WARNING"):
            response = self.client.patch(
                f"/projects/{self.locked.id}/", {"name": "Renamed"}, format="json"
            )

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response["Retry-After"], "2")
        self.assertEqual(
            response.json(), {"detail": "The database is busy or unavailable; retry shortly."}
        )
        self.assertEqual(_state(), before)

    def test_a_held_lock_does_not_stall_requests_about_another_project(self):
        self._hold_row_lock(self.locked)

        response = self.client.patch(
            f"/projects/{self.other.id}/", {"name": "Renamed"}, format="json"
        )

        self.assertEqual(response.status_code, 200)

    def test_no_free_connection_is_a_503(self):
        connection.close()  # this thread's own connection goes back to the pool, to be taken
        pool = connection.pool
        held = [pool.getconn() for _ in range(pool.max_size)]
        self.addCleanup(lambda: [pool.putconn(conn) for conn in held])

        with self.assertLogs("common.api.middleware", "WARNING"):
            response = self.client.get(f"/projects/{self.other.id}/")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response["Retry-After"], "2")


@override_settings(ROOT_URLCONF="common.api.urls")
class FastReadinessTests(TransactionTestCase):
    def test_readyz_answers_within_its_deadline_when_a_dependency_hangs(self):
        release = threading.Event()
        self.addCleanup(release.set)

        def hangs() -> None:
            release.wait(30)

        checks = {**health.READINESS_CHECKS, "database": hangs}
        with (
            pytest.MonkeyPatch.context() as patch,
            self.assertLogs("common.api.health", "WARNING") as logs,
        ):
            patch.setattr(health, "READINESS_CHECKS", checks)
            patch.setattr(health, "READY_TIMEOUT_SECONDS", 0.2)
            response = self.client.get("/readyz")

        self.assertFalse(release.is_set())  # answered while the check still hung
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["checks"], {"database": "down", "cache": "ok"})
        self.assertIn("did not answer", logs.output[0])
