"""The list cache, on the Redis of this machine: hits, invalidation after commit, outages."""

import threading
from unittest import mock

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection, transaction
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from common.domain import services
from common.domain.models import Task
from common.infra import cache as list_cache
from common.infra.cache.keys import version_name
from common.infra.cache.store import store
from common.infra.cache.versions import bump
from common.tests.base import CLOSED_CACHE, APITest
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory

WORKING_CACHES = settings.CACHES  # the suite's Redis, before any test points elsewhere


@override_settings(ROOT_URLCONF="local.urls")
class ListCacheTests(APITest):
    def get(self, path: str):
        response = self.client.get(path)
        self.assertEqual(response.status_code, 200, response.content)
        return response

    def ids(self, path: str) -> list[int]:
        return [row["id"] for row in self.get(path).json()["results"]]

    def committed(self):
        """Run the block's after-commit work (cache bumps) as a real commit would."""
        return self.captureOnCommitCallbacks(execute=True)

    def test_the_second_read_is_a_hit_with_the_same_bytes_and_only_the_caller_queries(self):
        TaskFactory.create_batch(3, project__owner=self.user)
        for path in ("/tasks/", "/projects/", "/tasks/?status=pending&ordering=-id&page_size=2"):
            with self.subTest(path):
                miss = self.get(path)
                with self.assertNumQueries(2):  # the caller and their memberships; not the page
                    hit = self.get(path)
                self.assertEqual((miss["X-Cache"], hit["X-Cache"]), ("miss", "hit"))
                self.assertEqual(hit.content, miss.content)
                self.assertEqual(hit["Content-Type"], "application/json")

    def test_every_parameter_read_and_the_last_of_repeated_ones_are_part_of_the_key(self):
        pending = TaskFactory(project__owner=self.user, status="pending")
        done = TaskFactory(project__owner=self.user, status="completed", title="foo")

        self.assertEqual(self.ids("/tasks/?status=pending&status=completed"), [done.id])
        self.assertEqual(self.ids("/tasks/?status=completed&status=pending"), [pending.id])
        self.assertEqual(self.ids("/tasks/?search=foo&status=completed"), [done.id])
        self.assertEqual(self.ids("/tasks/?search=foo%26status%3Dcompleted"), [])
        self.assertEqual(self.get("/tasks/?search=foo&status=completed")["X-Cache"], "hit")

    def test_the_pages_of_one_list_count_its_rows_once_until_a_write(self):
        project = ProjectFactory(owner=self.user)
        TaskFactory.create_batch(5, project=project, status="pending")
        TaskFactory(project=project, status="completed")

        def counted(path: str) -> tuple[int, int]:
            """The page's count, and the COUNT queries it took."""
            with CaptureQueriesContext(connection) as queries:
                page = self.get(path).json()
            return page["count"], sum("COUNT(" in q["sql"] for q in queries.captured_queries)

        self.get("/tasks/")  # the versions start (the first page of all is not counted ahead)

        self.assertEqual(counted("/tasks/?status=pending&page_size=2&page=1"), (5, 1))
        self.assertEqual(counted("/tasks/?status=pending&page_size=2&page=2"), (5, 0))
        self.assertEqual(counted("/tasks/?status=pending&page_size=3&page=2"), (5, 0))
        self.assertEqual(counted("/tasks/?status=completed&page_size=2"), (1, 1))  # other rows
        with self.committed():
            services.task_create(
                actor=self.user, project=project, title="more", due_date=timezone.now()
            )

        self.assertEqual(counted("/tasks/?status=pending&page_size=2&page=3"), (6, 1))

    def test_a_page_after_one_built_starts_after_its_last_row_until_a_write(self):
        project = ProjectFactory(owner=self.user)
        tasks = sorted(task.id for task in TaskFactory.create_batch(7, project=project))

        def page(path: str) -> tuple[list[int], int, bool]:
            """The page's ids, its count, and whether it skipped rows by OFFSET."""
            with CaptureQueriesContext(connection) as queries:
                body = self.get(path).json()
            offset = any("OFFSET" in query["sql"] for query in queries.captured_queries)
            return [row["id"] for row in body["results"]], body["count"], offset

        self.get("/tasks/")  # the versions start
        self.assertEqual(page("/tasks/?page_size=3"), (tasks[:3], 7, False))
        self.assertEqual(page("/tasks/?page_size=3&page=2"), (tasks[3:6], 7, False))
        self.assertEqual(page("/tasks/?page_size=3&page=3"), (tasks[6:], 7, False))
        self.assertEqual(page("/tasks/?page_size=2&page=2"), (tasks[2:4], 7, True))  # no page 1
        self.assertEqual(
            page("/tasks/?page_size=3&page=2&ordering=-id"), (tasks[3::-1][:3], 7, True)
        )
        with self.committed():
            services.task_delete(actor=self.user, task=Task.objects.get(pk=tasks[1]))

        # page 1's end is of the versions before the write: page 2 skips by OFFSET again
        self.assertEqual(page("/tasks/?page_size=3&page=2"), (tasks[4:7], 6, True))

    def test_a_project_filter_that_is_not_an_ascii_number_is_a_400(self):
        self.assertEqual(self.client.get("/tasks/?project=%C2%B2").status_code, 400)

    def test_renaming_a_user_shows_in_every_list(self):
        bob = UserFactory(username="bob")
        project = ProjectFactory(owner=bob, members=[self.user])
        task = TaskFactory(assignee=bob, project=project)
        paths = ["/tasks/", f"/tasks/?project={task.project_id}", "/projects/"]
        for path in paths:
            self.get(path)

        with self.committed():
            services.user_update(user=bob, username="robert")

        self.assertEqual(self.get(paths[0]).json()["results"][0]["assignee"], "robert")
        self.assertEqual(self.get(paths[1]).json()["results"][0]["assignee"], "robert")
        self.assertEqual(self.get(paths[2]).json()["results"][0]["owner"], "robert")

    def test_errors_are_not_cached(self):
        self.assertEqual(self.client.get("/tasks/?status=nope").status_code, 400)
        self.assertEqual(self.client.get("/tasks/?status=nope").status_code, 400)
        self.assertEqual(self.client.get("/tasks/?page=9").status_code, 404)

    def test_creating_updating_and_deleting_a_project_shows_in_the_next_list(self):
        self.get("/projects/")
        with self.committed():
            created = self.client.post("/projects/", {"name": "New"}, format="json").json()
        self.assertEqual(self.ids("/projects/"), [created["id"]])

        with self.committed():
            self.client.patch(f"/projects/{created['id']}/", {"name": "Renamed"}, format="json")
        self.assertEqual(self.get("/projects/").json()["results"][0]["name"], "Renamed")

        with self.committed():
            self.client.delete(f"/projects/{created['id']}/")
        self.assertEqual(self.ids("/projects/"), [])

    def test_deleting_a_project_removes_its_tasks_from_cached_task_lists(self):
        project = ProjectFactory(owner=self.user)
        task = TaskFactory(project=project)
        kept = TaskFactory(project__owner=self.user)
        self.assertEqual(self.ids(f"/tasks/?project={project.id}"), [task.id])
        self.assertEqual(self.ids("/tasks/"), [task.id, kept.id])

        with self.committed():
            self.client.delete(f"/projects/{project.id}/")

        self.assertEqual(self.client.get(f"/tasks/?project={project.id}").status_code, 400)
        self.assertEqual(self.ids("/tasks/"), [kept.id])

    def test_every_task_write_shows_in_the_next_list(self):
        project = ProjectFactory(owner=self.user)
        other = ProjectFactory(owner=self.user)
        path = f"/tasks/?project={project.id}"
        self.get(path)

        with self.committed():
            task = self.client.post(
                "/tasks/",
                {"project": project.id, "title": "a", "due_date": "2030-01-01T00:00:00Z"},
                format="json",
            ).json()
        self.assertEqual(self.ids(path), [task["id"]])

        body = {"project": project.id, "title": "put", "due_date": "2030-01-01T00:00:00Z"}
        with self.committed():
            self.client.put(f"/tasks/{task['id']}/", body, format="json")
        self.assertEqual(self.get(path).json()["results"][0]["title"], "put")

        with self.committed():
            self.client.patch(f"/tasks/{task['id']}/", {"status": "completed"}, format="json")
        self.assertEqual(self.get(path).json()["results"][0]["status"], "completed")

        self.get(f"/tasks/?project={other.id}")
        with self.committed():  # a move leaves the old project's list and joins the new one's
            self.client.patch(f"/tasks/{task['id']}/", {"project": other.id}, format="json")
        self.assertEqual(self.ids(path), [])
        self.assertEqual(self.ids(f"/tasks/?project={other.id}"), [task["id"]])

        with self.committed():
            self.client.delete(f"/tasks/{task['id']}/")
        self.assertEqual(self.ids(f"/tasks/?project={other.id}"), [])

    def test_a_new_comment_shows_in_the_next_lists_comment_count(self):
        task = TaskFactory(project__owner=self.user)
        self.get("/tasks/")
        self.get(f"/tasks/?project={task.project_id}")

        with self.committed():
            self.client.post(f"/tasks/{task.id}/comments/", {"content": "hi"}, format="json")

        self.assertEqual(self.get("/tasks/").json()["results"][0]["comment_count"], 1)
        self.assertEqual(
            self.get(f"/tasks/?project={task.project_id}").json()["results"][0]["comment_count"], 1
        )

    def test_a_write_to_one_project_keeps_other_projects_filtered_lists_cached(self):
        one, two = TaskFactory(project__owner=self.user), TaskFactory(project__owner=self.user)
        self.get(f"/tasks/?project={two.project_id}")

        with self.committed():
            services.task_update(actor=None, task=one, title="changed")

        self.assertEqual(self.get(f"/tasks/?project={two.project_id}")["X-Cache"], "hit")
        self.assertEqual(self.get(f"/tasks/?project={one.project_id}")["X-Cache"], "miss")

    def test_writes_from_the_shell_through_services_invalidate_in_one_transaction(self):
        project = ProjectFactory(owner=self.user)
        self.get("/tasks/")
        self.get("/projects/")

        with self.committed(), transaction.atomic():  # several services, one commit
            task = services.task_create(
                actor=None, project=project, title="shell", due_date=timezone.now()
            )
            services.comment_create(actor=None, task=task, author="x", content="hi")
            services.project_update(actor=None, project=project, name="shell-renamed")

        self.assertEqual(self.get("/tasks/").json()["results"][0]["title"], "shell")
        self.assertEqual(self.get("/tasks/").json()["results"][0]["comment_count"], 1)
        self.assertEqual(self.get("/projects/").json()["results"][0]["name"], "shell-renamed")

    def test_a_write_outside_services_invalidates_nothing(self):
        # No signals: the ORM alone (a bulk update() from a shell) is not seen by the cache.
        task = TaskFactory()
        self.get("/tasks/")

        with self.committed():
            Task.objects.filter(pk=task.pk).update(title="behind the cache's back")

        self.assertEqual(self.get("/tasks/")["X-Cache"], "hit")

    def test_deleting_a_user_shows_in_every_list(self):
        bob = UserFactory(username="bob")
        TaskFactory(assignee=bob, project__owner=self.user)
        self.get("/tasks/")

        with self.committed():
            services.user_delete(user=bob)

        self.assertIsNone(self.get("/tasks/").json()["results"][0]["assignee"])

    def test_a_rolled_back_write_bumps_nothing(self):
        task = TaskFactory(project__owner=self.user)
        self.get("/tasks/")

        with self.committed(), self.assertRaises(RuntimeError), transaction.atomic():
            services.task_update(actor=None, task=task, title="doomed")
            raise RuntimeError

        self.assertEqual(self.get("/tasks/")["X-Cache"], "hit")

    def test_a_vanished_version_restarts_above_every_old_one(self):
        TaskFactory(project__owner=self.user)
        self.get("/tasks/")
        store().delete(version_name("tasks"))  # as an eviction or a flush would

        self.assertEqual(self.get("/tasks/")["X-Cache"], "miss")


@override_settings(ROOT_URLCONF="local.urls", CACHES=CLOSED_CACHE)
class CacheOutageTests(APITest):
    def setUp(self):
        super().setUp()
        patcher = mock.patch.object(store(), "skip_until", 0.0)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_reads_and_writes_work_from_the_database_when_redis_is_down(self):
        project = ProjectFactory(owner=self.user)

        with (
            self.assertLogs("common.infra.cache", "WARNING"),
            self.captureOnCommitCallbacks(execute=True),
        ):
            listed = self.client.get("/tasks/")
            created = self.client.post(
                "/tasks/",
                {"project": project.id, "title": "t", "due_date": "2030-01-01T00:00:00Z"},
                format="json",
            )
            again = self.client.get("/tasks/")

        self.assertEqual((listed.status_code, listed["X-Cache"]), (200, "miss"))
        self.assertEqual(created.status_code, 201)
        self.assertEqual([t["id"] for t in again.json()["results"]], [created.json()["id"]])

    def test_caching_resumes_by_itself_when_redis_returns(self):
        TaskFactory(project__owner=self.user)
        with self.assertLogs("common.infra.cache", "WARNING"):
            self.assertEqual(self.client.get("/tasks/")["X-Cache"], "miss")

        store().skip_until = 0.0  # as if the few seconds of skipping had passed
        with override_settings(CACHES=WORKING_CACHES):
            self.assertEqual(self.client.get("/tasks/")["X-Cache"], "miss")
            self.assertEqual(self.client.get("/tasks/")["X-Cache"], "hit")


def test_a_burst_of_misses_on_one_key_builds_the_page_once(db):
    builds = []
    started = threading.Barrier(8)
    request = RequestFactory().get("/tasks/", {"status": "pending"})
    request.user = UserFactory()
    bump(("tasks", "users"))  # the versions exist: the page is named before it is built

    def build() -> bytes:
        builds.append(1)
        threading.Event().wait(0.2)  # a slow query, so the others arrive while it runs
        return b"page"

    def read(results: list) -> None:
        started.wait()
        results.append(list_cache.cached_page(request, "tasks", "projects:", build))

    results: list = []
    threads = [threading.Thread(target=read, args=(results,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(builds) == 1
    assert sorted(hit for _, hit in results) == [False] + [True] * 7
    assert {page for page, _ in results} == {b"page"}


@pytest.mark.django_db(transaction=True)
def test_a_hit_in_front_of_django_touches_no_database(settings):
    from functions.tasks.handler import application

    settings.ALLOWED_HOSTS = ["testserver"]
    user = UserFactory()
    TaskFactory.create_batch(2, project__owner=user)
    headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}

    async def get_twice() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get("/tasks/", headers=headers) for _ in range(2)]

    with CaptureQueriesContext(connection) as queries:
        miss, hit = async_to_sync(get_twice)()  # Django's sync code runs on this thread

    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert hit.content == miss.content
    # All of them the miss's: the caller, their memberships, the count, the page.
    assert len(queries) == 4


@pytest.mark.django_db(transaction=True)
def test_the_front_lets_django_refuse_a_bad_token(settings):
    from functions.tasks.handler import application

    settings.ALLOWED_HOSTS = ["testserver"]

    async def get(headers: dict) -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/tasks/", headers=headers)

    assert async_to_sync(get)({}).status_code == 401
    assert async_to_sync(get)({"Authorization": "Bearer nonsense"}).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_deactivated_user_gets_no_more_hits_from_the_front(settings):
    from functions.tasks.handler import application

    settings.ALLOWED_HOSTS = ["testserver"]
    user = UserFactory()
    headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/tasks/", headers=headers)

    first, second = async_to_sync(get)(), async_to_sync(get)()
    services.user_deactivate(user=user)  # autocommit: the on-commit work runs now
    after = async_to_sync(get)()

    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert after.status_code == 401
