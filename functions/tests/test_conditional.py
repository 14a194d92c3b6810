"""ETag, If-None-Match (304) and If-Match (412) on projects and tasks, and on their list pages.

Against PostgreSQL and Redis. The racing PATCHes run on two connections, both sent while the
test holds the project's row lock, so both have read the same tag before either writes.
"""

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.test import TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from common.domain import services
from common.domain.models import Event, Project, Task
from common.tests.base import APITest
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory
from common.tests.test_access_concurrency import TIMEOUT, _in_thread
from functions.tests.test_idempotency import wait_until_waiting

urls = override_settings(ROOT_URLCONF="local.urls")


@urls
class SingleObjectTests(APITest):
    def setUp(self):
        super().setUp()
        self.project = ProjectFactory(owner=self.user)
        self.task = TaskFactory(project=self.project, title="before")
        self.paths = {"task": f"/tasks/{self.task.id}/", "project": f"/projects/{self.project.id}/"}

    def tag(self, path: str) -> str:
        return self.client.get(path)["ETag"]

    def events(self) -> int:
        return Event.objects.count()

    def test_a_get_is_tagged_and_its_tag_answers_304_without_a_body(self):
        for name, path in self.paths.items():
            with self.subTest(name):
                got = self.client.get(path)
                tag = got["ETag"]
                self.assertRegex(tag, r'^"[0-9a-f]{32}"$')  # strong
                self.assertEqual(self.client.get(path)["ETag"], tag)
                for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
                    answer = self.client.get(path, HTTP_IF_NONE_MATCH=header)
                    self.assertEqual((answer.status_code, answer.content), (304, b""), header)
                    self.assertEqual(answer["ETag"], tag)
                other = self.client.get(path, HTTP_IF_NONE_MATCH='"other"')
                self.assertEqual((other.status_code, other.content), (200, got.content))

    def test_a_write_answer_carries_the_tag_of_what_a_get_then_shows(self):
        bodies = {"task": {"title": "after"}, "project": {"name": "after"}}
        for name, path in self.paths.items():
            with self.subTest(name):
                written = self.client.patch(path, bodies[name], format="json")
                self.assertEqual(written.status_code, 200)
                self.assertEqual(written["ETag"], self.tag(path))
        created = self.client.post("/projects/", {"name": "new"}, format="json")
        self.assertEqual(created["ETag"], self.tag(f"/projects/{created.json()['id']}/"))

    def test_if_match_with_the_current_tag_writes(self):
        bodies = {"task": {"title": "after"}, "project": {"name": "after"}}
        for name, path in self.paths.items():
            with self.subTest(name):
                tag = self.tag(path)
                written = self.client.patch(path, bodies[name], format="json", HTTP_IF_MATCH=tag)
                self.assertEqual(written.status_code, 200)
                self.assertNotEqual(written["ETag"], tag)
                # The tag just answered is current: the next write may name it.
                again = self.client.patch(
                    path, bodies[name], format="json", HTTP_IF_MATCH=written["ETag"]
                )
                self.assertEqual(again.status_code, 200)

    def test_if_match_with_a_stale_tag_is_412_and_changes_nothing(self):
        stale = self.tag(self.paths["task"])
        services.task_update(actor=self.user, task=self.task, title="meanwhile")
        events = self.events()
        put = {"project": self.project.id, "title": "mine", "due_date": "2030-01-01T00:00:00Z"}

        answers = [
            self.client.patch(
                self.paths["task"], {"title": "mine"}, format="json", HTTP_IF_MATCH=stale
            ),
            self.client.put(self.paths["task"], put, format="json", HTTP_IF_MATCH=stale),
            self.client.delete(self.paths["task"], HTTP_IF_MATCH=stale),
        ]

        for answer in answers:
            self.assertEqual(answer.status_code, 412)
            self.assertIn("If-Match", answer.json()["detail"])
        self.assertEqual(Task.objects.get().title, "meanwhile")
        self.assertEqual(self.events(), events)

    def test_a_stale_project_tag_is_412_for_update_and_delete(self):
        stale = self.tag(self.paths["project"])
        services.project_update(actor=self.user, project=self.project, description="meanwhile")
        path = self.paths["project"]

        patched = self.client.patch(path, {"name": "x"}, format="json", HTTP_IF_MATCH=stale)
        deleted = self.client.delete(path, HTTP_IF_MATCH=stale)
        current = self.client.delete(path, HTTP_IF_MATCH=self.tag(path))

        self.assertEqual((patched.status_code, deleted.status_code), (412, 412))
        self.assertEqual(current.status_code, 204)
        self.assertFalse(Project.objects.exists())

    def test_a_change_no_edit_made_still_makes_the_tag_stale(self):
        """The tag covers the whole representation: a new comment changes `comment_count`."""
        stale = self.tag(self.paths["task"])
        services.comment_create(actor=self.user, task=self.task, author="alice", content="hi")

        answer = self.client.patch(
            self.paths["task"], {"title": "x"}, format="json", HTTP_IF_MATCH=stale
        )

        self.assertEqual(answer.status_code, 412)

    def test_if_match_star_writes_and_a_weak_tag_never_matches(self):
        path = self.paths["task"]
        weak = self.client.patch(
            path, {"title": "x"}, format="json", HTTP_IF_MATCH=f"W/{self.tag(path)}"
        )
        star = self.client.patch(path, {"title": "y"}, format="json", HTTP_IF_MATCH="*")
        unreadable = self.client.patch(
            path, {"title": "z"}, format="json", HTTP_IF_MATCH="nonsense"
        )

        self.assertEqual((weak.status_code, star.status_code), (412, 200))
        self.assertEqual(unreadable.status_code, 412)
        self.assertEqual(Task.objects.get().title, "y")

    def test_a_write_without_if_match_is_not_conditional(self):
        stale = self.tag(self.paths["task"])
        services.task_update(actor=self.user, task=self.task, title="meanwhile")

        answer = self.client.patch(self.paths["task"], {"title": "mine"}, format="json")

        self.assertEqual(answer.status_code, 200)
        self.assertNotEqual(answer["ETag"], stale)

    def test_a_non_member_gets_404_and_a_viewer_403_before_any_412(self):
        viewer, stranger = UserFactory(), UserFactory()
        self.project.memberships.create(user=viewer, role="viewer")
        for user, status in ((viewer, 403), (stranger, 404)):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
            answer = client.patch(
                self.paths["task"], {"title": "x"}, format="json", HTTP_IF_MATCH='"stale"'
            )
            self.assertEqual(answer.status_code, status)


@urls
class ListPageTests(APITest):
    def setUp(self):
        super().setUp()
        self.project = ProjectFactory(owner=self.user)
        TaskFactory.create_batch(2, project=self.project)

    def test_a_list_page_is_tagged_by_its_bytes_on_a_miss_and_a_hit(self):
        for path in ("/tasks/", "/projects/", f"/tasks/?project={self.project.id}"):
            with self.subTest(path):
                miss, hit = self.client.get(path), self.client.get(path)
                self.assertEqual((miss["X-Cache"], hit["X-Cache"]), ("miss", "hit"))
                self.assertEqual(miss["ETag"], hit["ETag"])
                answer = self.client.get(path, HTTP_IF_NONE_MATCH=miss["ETag"])
                self.assertEqual((answer.status_code, answer.content), (304, b""))
                self.assertEqual(answer["ETag"], miss["ETag"])

    def test_a_write_gives_the_page_a_new_tag(self):
        tag = self.client.get("/tasks/")["ETag"]
        with self.captureOnCommitCallbacks(execute=True):  # the cache's bump, as after a commit
            services.task_update(actor=self.user, task=Task.objects.first(), title="changed")

        answer = self.client.get("/tasks/", HTTP_IF_NONE_MATCH=tag)

        self.assertEqual(answer.status_code, 200)
        self.assertNotEqual(answer["ETag"], tag)


async def _get(application, path: str, headers: dict) -> httpx.Response:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.get(path, headers=headers)


@pytest.mark.django_db(transaction=True)
def test_the_hit_path_in_front_of_django_answers_304_without_the_page(settings):
    from functions.tasks.handler import application

    settings.ALLOWED_HOSTS = ["testserver"]
    user = UserFactory()
    TaskFactory.create_batch(2, project__owner=user)
    auth = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}
    miss = async_to_sync(_get)(application, "/tasks/", auth)
    hit = async_to_sync(_get)(application, "/tasks/", auth)
    tag = miss.headers["etag"]

    with CaptureQueriesContext(connection) as queries:
        not_modified = async_to_sync(_get)(application, "/tasks/", {**auth, "If-None-Match": tag})
        weak = async_to_sync(_get)(application, "/tasks/", {**auth, "If-None-Match": f"W/{tag}"})
        other = async_to_sync(_get)(application, "/tasks/", {**auth, "If-None-Match": '"x"'})

    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert hit.headers["etag"] == tag
    assert (not_modified.status_code, not_modified.content) == (304, b"")
    assert not_modified.headers["etag"] == tag
    assert not_modified.headers["x-cache"] == "hit"  # the front answered it
    assert not_modified.headers["x-content-type-options"] == "nosniff"
    assert weak.status_code == 304
    assert (other.status_code, other.content) == (200, hit.content)
    assert len(queries) == 0  # none of them entered Django


@urls
class RacingPatchTests(TransactionTestCase):
    def setUp(self):
        self.user = UserFactory()
        self.project = ProjectFactory(owner=self.user)
        self.task = TaskFactory(project=self.project, title="before")

    def signed_in(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.user)}")
        return client

    def test_two_patches_with_the_same_tag_exactly_one_wins(self):
        path = f"/tasks/{self.task.id}/"
        tag = self.signed_in().get(path)["ETag"]

        def patch(title: str):
            return lambda: self.signed_in().patch(
                path, {"title": title}, format="json", HTTP_IF_MATCH=tag
            )

        with transaction.atomic():  # both reach the lock before either writes
            Project.objects.select_for_update().get(pk=self.project.pk)
            racers = [_in_thread(patch(title)) for title in ("one", "two")]
            wait_until_waiting(2)
        for thread, _ in racers:
            thread.join(TIMEOUT)

        statuses = sorted(box["result"].status_code for _, box in racers)
        self.assertEqual(statuses, [200, 412])
        [winner] = [box["result"] for _, box in racers if box["result"].status_code == 200]
        self.assertEqual(Task.objects.get().title, winner.json()["title"])
        self.assertEqual(Event.objects.filter(type="task.updated").count(), 1)


def test_the_schema_documents_the_conditional_and_idempotent_answers_where_they_happen():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator(urlconf="local.urls").get_schema(public=True)["paths"]

    def operation(path: str, method: str) -> tuple[set[str], set[str], dict]:
        found = paths[path][method]
        headers = {p["name"] for p in found.get("parameters", []) if p["in"] == "header"}
        return set(found["responses"]), headers, found["responses"]

    for path in ("/projects/", "/tasks/", "/projects/{id}/", "/tasks/{id}/"):
        codes, headers, responses = operation(path, "get")
        assert "304" in codes, path
        assert "If-None-Match" in headers, path
        assert "ETag" in responses["200"]["headers"], path
    for path in ("/projects/{id}/", "/tasks/{id}/"):
        for method in ("put", "patch", "delete"):
            codes, headers, _ = operation(path, method)
            assert "412" in codes, (path, method)
            assert "If-Match" in headers, (path, method)
    for path in ("/projects/", "/tasks/", "/tasks/{task_pk}/comments/", "/projects/{id}/members/"):
        codes, headers, responses = operation(path, "post")
        assert {"409", "422"} <= codes, path
        assert "Idempotency-Key" in headers, path
        assert "Retry-After" in responses["409"]["headers"], path
    for path, method in (("/tasks/{task_pk}/comments/", "get"), ("/auth/token/", "post")):
        codes, headers, _ = operation(path, method)
        assert not {"304", "409", "412", "422"} & codes, path
        assert not {"If-None-Match", "Idempotency-Key"} & headers, path
