"""`Idempotency-Key` on every POST of the API: a retry answers the first answer, and writes nothing.

Against PostgreSQL; the concurrent duplicate runs two real requests on two connections, the
first held inside its transaction by a row lock the test takes.
"""

import time
from datetime import timedelta
from unittest import mock

from django.db import OperationalError, connection, transaction
from django.test import TransactionTestCase, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from common.api.idempotency import IdempotentPostMixin
from common.domain.models import Comment, Event, IdempotencyRecord, Membership, Project, Task
from common.tests.base import APITest
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory
from common.tests.test_access_concurrency import TIMEOUT, _in_thread

urls = override_settings(ROOT_URLCONF="local.urls")  # every function's paths
DUE = "2030-01-02T03:04:05Z"


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def wait_until_waiting(count: int) -> None:
    """Wait until `count` other connections of this database wait for a lock."""
    deadline = time.monotonic() + TIMEOUT
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees one
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.01)
    raise AssertionError(f"fewer than {count} connections ever waited for a lock")


def post(client: APIClient, path: str, body: dict, key: str | None = "key-1"):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(path, body, format="json", **headers)


@urls
class ReplayTests(APITest):
    def setUp(self):
        super().setUp()
        self.project = ProjectFactory(owner=self.user)
        self.task = TaskFactory(project=self.project)
        self.other = UserFactory(username="bob")

    def creates(self) -> dict:
        """Every POST of the API: path, body, and the rows it adds."""
        return {
            "projects": ("/projects/", {"name": "Apollo"}, Project.objects),
            "tasks": (
                "/tasks/",
                {"project": self.project.id, "title": "Fuel", "due_date": DUE},
                Task.objects,
            ),
            "comments": (f"/tasks/{self.task.id}/comments/", {"content": "Hi"}, Comment.objects),
            "members": (
                f"/projects/{self.project.id}/members/",
                {"username": "bob", "role": "viewer"},
                Membership.objects,
            ),
        }

    def test_a_retry_answers_the_first_answer_byte_for_byte_and_writes_nothing_again(self):
        for name, (path, body, rows) in self.creates().items():
            with self.subTest(name):
                before, events = rows.count(), Event.objects.count()
                first = post(self.client, path, body, key=f"create-{name}")
                again = post(self.client, path, body, key=f"create-{name}")

                self.assertEqual(first.status_code, 201, first.content)
                self.assertEqual((again.status_code, again.content), (201, first.content))
                for header in ("Content-Type", "Location", "ETag"):
                    self.assertEqual(again.get(header), first.get(header), header)
                self.assertEqual(again["Idempotent-Replayed"], "true")
                self.assertNotIn("Idempotent-Replayed", first)
                self.assertEqual(rows.count(), before + 1)
                self.assertEqual(Event.objects.count(), events + 1)  # one write, one event

    def test_a_created_project_or_task_is_located_and_tagged_as_its_get(self):
        for path, body, _ in list(self.creates().values())[:2]:
            created = post(self.client, path, body, key=None)
            self.assertEqual(created.status_code, 201)
            got = self.client.get(created["Location"])
            self.assertEqual(created["Location"], f"http://testserver{path}{created.json()['id']}/")
            self.assertEqual((got.status_code, got.content), (200, created.content))
            self.assertEqual(got["ETag"], created["ETag"])

    def test_the_same_key_with_another_body_or_path_is_a_422_and_changes_nothing(self):
        path, body, rows = self.creates()["tasks"]
        post(self.client, path, body)
        events = Event.objects.count()

        other_body = post(self.client, path, {**body, "title": "Other"})
        other_path = post(self.client, "/projects/", {"name": "Apollo"})

        for answer in (other_body, other_path):
            self.assertEqual(answer.status_code, 422)
            self.assertIn("different request", answer.json()["detail"])
        self.assertEqual((rows.count(), Project.objects.count()), (2, 1))
        self.assertEqual(Event.objects.count(), events)

    def test_the_same_body_in_another_key_order_or_spacing_is_the_same_request(self):
        path, _, rows = self.creates()["tasks"]
        first = f'{{"project": {self.project.id}, "title": "Fuel", "due_date": "{DUE}"}}'
        again = f'{{"due_date":"{DUE}","title":"Fuel","project":{self.project.id}}}'
        answers = [
            self.client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
            for body in (first, again)
        ]

        self.assertEqual([answer.status_code for answer in answers], [201, 201])
        self.assertEqual(answers[1]["Idempotent-Replayed"], "true")
        self.assertEqual(rows.count(), 2)  # the factory's task and one more

    def test_two_users_with_one_key_are_two_requests(self):
        path, body, rows = self.creates()["projects"]
        mine = post(self.client, path, body, key="shared")
        theirs = post(client_of(self.other), path, body, key="shared")

        self.assertEqual((mine.status_code, theirs.status_code), (201, 201))
        self.assertNotIn("Idempotent-Replayed", theirs)
        self.assertNotEqual(mine.json()["id"], theirs.json()["id"])
        self.assertEqual(theirs.json()["owner"], "bob")
        self.assertEqual(rows.count(), 3)  # the set-up's and theirs

    def test_a_failed_first_request_records_nothing_and_its_retry_runs(self):
        path, body, rows = self.creates()["tasks"]
        refused = post(self.client, path, {**body, "status": "done"})
        retried = post(self.client, path, body)  # another body: the failure was not recorded

        self.assertEqual((refused.status_code, retried.status_code), (400, 201))
        self.assertNotIn("Idempotent-Replayed", retried)
        self.assertEqual(rows.count(), 2)

    def test_a_write_whose_transaction_rolled_back_is_not_replayed_but_runs_again(self):
        """The task and its record were written, then the transaction failed: neither stays."""
        path, body, rows = self.creates()["tasks"]
        create = IdempotencyRecord.objects.create

        def record_then_fail(**fields):
            create(**fields)
            raise OperationalError("the connection dropped before the commit")

        with mock.patch.object(IdempotencyRecord.objects, "create", side_effect=record_then_fail):
            failed = post(self.client, path, body)
        self.assertEqual(failed.status_code, 503)
        self.assertEqual((rows.count(), IdempotencyRecord.objects.count()), (1, 0))
        self.assertFalse(Event.objects.filter(type="task.created").exists())

        retried = post(self.client, path, body)
        again = post(self.client, path, body)

        self.assertEqual(retried.status_code, 201)
        self.assertNotIn("Idempotent-Replayed", retried)
        self.assertEqual((again.content, again["Idempotent-Replayed"]), (retried.content, "true"))
        self.assertEqual(rows.count(), 2)
        self.assertEqual(Event.objects.filter(type="task.created").count(), 1)

    def test_a_key_is_kept_24_hours(self):
        path, body, rows = self.creates()["projects"]
        post(self.client, path, body)
        old = IdempotencyRecord.objects.get()
        old.created_at -= timedelta(hours=24, seconds=1)
        old.save()

        later = post(self.client, path, {"name": "Another"})  # a new request under the old key

        self.assertEqual(later.status_code, 201)
        self.assertNotIn("Idempotent-Replayed", later)
        self.assertEqual(rows.count(), 3)
        self.assertEqual(IdempotencyRecord.objects.get().body, later.content)  # the old one went

    def test_a_key_must_be_1_to_255_printable_ascii_characters(self):
        path, body, rows = self.creates()["projects"]
        for key in ("", "x" * 256, "caf\u00e9", "tab\there"):
            with self.subTest(key=key[:10]):
                answer = self.client.post(
                    path, body, format="json", HTTP_IDEMPOTENCY_KEY=key.encode().decode("latin-1")
                )
                self.assertEqual(answer.status_code, 400)
                self.assertIn("Idempotency-Key", answer.json()["detail"])
        self.assertEqual(post(self.client, path, body, key="~ !" + "x" * 252).status_code, 201)
        self.assertEqual(rows.count(), 2)

    def test_a_post_without_the_key_is_not_recorded(self):
        path, body, rows = self.creates()["projects"]
        post(self.client, path, body, key=None)
        post(self.client, path, body, key=None)

        self.assertEqual(rows.count(), 3)
        self.assertFalse(IdempotencyRecord.objects.exists())


def test_every_post_of_the_api_honours_the_key():
    """A view that answers POST for a signed-in user takes the mixin (auth's don't: no user)."""

    def views(resolver: URLResolver, prefix: str = ""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                yield from views(pattern, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "view_class"):
                yield prefix + str(pattern.pattern), pattern.callback.view_class

    posting = {
        path: view
        for path, view in views(get_resolver("local.urls"))
        if hasattr(view, "post") and not path.startswith(("auth/", "local/", "admin/"))
    }

    assert set(posting) >= {"projects/", "tasks/", "projects/<int:pk>/members/"}
    without = [path for path, view in posting.items() if not issubclass(view, IdempotentPostMixin)]
    assert without == []


@urls
class ConcurrentDuplicateTests(TransactionTestCase):
    def setUp(self):
        self.user = UserFactory()
        self.project = ProjectFactory(owner=self.user)
        self.body = {"project": self.project.id, "title": "Fuel", "due_date": DUE}

    def test_a_duplicate_while_the_first_still_runs_is_a_409_and_the_first_commits_once(self):
        with transaction.atomic():  # hold the project's row lock: the first waits inside its write
            Project.objects.select_for_update().get(pk=self.project.pk)
            first, first_box = _in_thread(lambda: post(client_of(self.user), "/tasks/", self.body))
            wait_until_waiting(1)
            second, second_box = _in_thread(
                lambda: post(client_of(self.user), "/tasks/", self.body)
            )
            second.join(TIMEOUT)  # answered while the first still waits
            self.assertFalse(second.is_alive())
            self.assertTrue(first.is_alive())
        first.join(TIMEOUT)

        duplicate, created = second_box["result"], first_box["result"]
        self.assertEqual(duplicate.status_code, 409)
        self.assertEqual(duplicate["Retry-After"], "1")
        self.assertIn("still in progress", duplicate.json()["detail"])
        self.assertEqual(created.status_code, 201)
        replay = post(client_of(self.user), "/tasks/", self.body)
        self.assertEqual((replay.status_code, replay.content), (201, created.content))
        self.assertEqual(Task.objects.count(), 1)
        self.assertEqual(Event.objects.filter(type="task.created").count(), 1)

    def test_another_users_request_with_the_same_key_does_not_wait(self):
        other = UserFactory()
        with transaction.atomic():
            Project.objects.select_for_update().get(pk=self.project.pk)
            first, first_box = _in_thread(lambda: post(client_of(self.user), "/tasks/", self.body))
            wait_until_waiting(1)
            theirs, theirs_box = _in_thread(
                lambda: post(client_of(other), "/projects/", {"name": "Theirs"})
            )
            theirs.join(TIMEOUT)
            self.assertEqual(theirs_box["result"].status_code, 201)
        first.join(TIMEOUT)
        self.assertEqual(first_box["result"].status_code, 201)
