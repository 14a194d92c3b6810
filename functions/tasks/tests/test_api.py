"""The tasks function's endpoints, against PostgreSQL."""

from datetime import UTC, datetime, timedelta

from django.test import override_settings
from django.utils import timezone

from common.domain.models import Task
from common.domain.services import comment_create
from common.tests.base import APITest, iso
from common.tests.factories import CommentFactory, ProjectFactory, TaskFactory, UserFactory

urls = override_settings(ROOT_URLCONF="functions.tasks.urls")


def task_body(task: Task) -> dict:
    return {
        "id": task.id,
        "project": task.project_id,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "assignee": task.assignee.username if task.assignee else None,
        "due_date": iso(task.due_date),
        "comment_count": task.comment_count,
        "reminder_sent_at": iso(task.reminder_sent_at),
        "completed_at": iso(task.completed_at),
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
    }


@urls
class TaskCreateTests(APITest):
    def setUp(self):
        super().setUp()
        self.project = ProjectFactory(owner=self.user)

    def post(self, **fields):
        body = {
            "project": self.project.id,
            "title": "Write",
            "due_date": "2030-01-02T03:04:05Z",
            **fields,
        }
        return self.client.post("/tasks/", body, format="json")

    def test_creating_a_task_answers_201_with_the_whole_task(self):
        response = self.post(description="d", assignee="alice")

        self.assertEqual(response.status_code, 201)
        task = Task.objects.get()
        self.assertEqual(response.json(), task_body(task))
        self.assertEqual(response.json()["due_date"], "2030-01-02T03:04:05Z")
        self.assertEqual(
            (task.status, task.assignee, task.comment_count), ("pending", self.user, 0)
        )

    def test_a_task_created_completed_has_completed_at(self):
        response = self.post(status="completed")

        self.assertIsNotNone(response.json()["completed_at"])

    def test_due_date_offsets_are_returned_in_utc(self):
        response = self.post(due_date="2030-01-02T05:04:05+02:00")

        self.assertEqual(response.json()["due_date"], "2030-01-02T03:04:05Z")

    @override_settings(TIME_ZONE="America/New_York")
    def test_a_naive_due_date_is_read_in_the_server_time_zone(self):
        response = self.post(due_date="2030-01-02T03:04:05")

        self.assertEqual(response.json()["due_date"], "2030-01-02T08:04:05Z")

    @override_settings(TIME_ZONE="Asia/Tokyo")
    def test_a_naive_due_date_off_the_calendar_in_utc_is_a_400(self):
        response = self.post(due_date="0001-01-01T00:00:00")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"due_date": ["Datetime value out of range."]})

    def test_a_past_due_date_is_allowed(self):
        self.assertEqual(self.post(due_date="2001-01-01T00:00:00Z").status_code, 201)

    def test_invalid_fields_are_refused_with_their_errors_and_nothing_is_stored(self):
        cases = {
            "blank title": ({"title": " "}, {"title": ["This field may not be blank."]}),
            "long title": (
                {"title": "x" * 256},
                {"title": ["Ensure this field has no more than 255 characters."]},
            ),
            "bad status": ({"status": "done"}, {"status": ['"done" is not a valid choice.']}),
            "bad due_date": (
                {"due_date": "tomorrow"},
                {
                    "due_date": [
                        "Datetime has wrong format. Use one of these formats instead: "
                        "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
                    ]
                },
            ),
            "missing due_date": ({"due_date": None}, {"due_date": ["This field may not be null."]}),
            "unknown project": (
                {"project": 999},
                {"project": ['Invalid pk "999" - object does not exist.']},
            ),
            "huge project id": (
                {"project": 10**30},
                {"project": [f'Invalid pk "{10**30}" - object does not exist.']},
            ),
            "unknown assignee": (
                {"assignee": "nobody"},
                {"assignee": ["Object with username=nobody does not exist."]},
            ),
            "nul in title": ({"title": "a\x00b"}, {"title": ["Null characters are not allowed."]}),
        }
        for case, (fields, errors) in cases.items():
            with self.subTest(case):
                response = self.post(**fields)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json(), errors)
        self.assertFalse(Task.objects.exists())

    def test_the_project_is_refused_as_the_fields_own_lookup_refuses_it(self):
        # The view's field takes the project from project_for_write; other callers look it up.
        from functools import partial
        from types import SimpleNamespace

        from django.db import transaction

        from common.api.serializers import TaskSerializer
        from common.domain import services

        request = SimpleNamespace(user=self.user)
        for_write = partial(services.project_for_write, actor=self.user)
        own, stranger = self.project.id, ProjectFactory().id
        values = [own, str(own), f"{own}.0", "x", 1.5, True, None, [], {}, 0, -1, 10**30]
        for value in [*values, stranger, str(stranger)]:
            with self.subTest(value):
                body = {"project": value, "title": "T", "due_date": "2030-01-01T00:00:00Z"}
                answers = []
                for context in (
                    {"request": request},
                    {"request": request, "project_for_write": for_write},
                ):
                    with transaction.atomic():
                        serializer = TaskSerializer(data=body, context=context)
                        answers.append((serializer.is_valid(), serializer.errors))
                self.assertEqual(answers[0], answers[1])

    def test_a_create_reads_the_caller_the_locked_project_with_the_role_then_writes(self):
        # The caller; the project's lock and the role (one round trip); the insert; the event.
        # SAVEPOINT and RELEASE: the view's transaction, inside the test's.
        with self.assertNumQueries(6):
            self.assertEqual(self.post().status_code, 201)

    def test_required_fields_are_named_when_missing(self):
        response = self.client.post("/tasks/", {}, format="json")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.json(),
            {
                "project": ["This field is required."],
                "title": ["This field is required."],
                "due_date": ["This field is required."],
            },
        )

    def test_read_only_fields_are_ignored(self):
        response = self.post(
            comment_count=7,
            completed_at="2020-01-01T00:00:00Z",
            reminder_sent_at="2020-01-01T00:00:00Z",
        )

        body = response.json()
        self.assertEqual(
            (body["comment_count"], body["completed_at"], body["reminder_sent_at"]), (0, None, None)
        )


@urls
class TaskUpdateTests(APITest):
    def test_put_replaces_the_task(self):
        task = TaskFactory(project__owner=self.user, description="old")
        bob = UserFactory(username="bob")
        other = ProjectFactory(owner=self.user, members=[bob])

        response = self.client.put(
            f"/tasks/{task.id}/",
            {
                "project": other.id,
                "title": "New",
                "due_date": "2031-01-01T00:00:00Z",
                "assignee": "bob",
                "status": "in_progress",
            },
            format="json",
        )

        self.assertEqual(response.status_code, 200)
        task.refresh_from_db()
        self.assertEqual(response.json(), task_body(task))
        self.assertEqual(
            (task.project, task.title, task.assignee, task.status),
            (other, "New", bob, "in_progress"),
        )

    def test_a_put_in_its_own_project_reads_the_caller_the_locks_then_writes(self):
        task = TaskFactory(project__owner=self.user)
        body = {"project": task.project_id, "title": "New", "due_date": "2031-01-01T00:00:00Z"}

        # The caller; the project's lock with its row; the task's with the role; the update;
        # the event. SAVEPOINT and RELEASE: the view's transaction, inside the test's.
        with self.assertNumQueries(7):
            response = self.client.put(f"/tasks/{task.id}/", body, format="json")

        self.assertEqual(response.status_code, 200)
        task.refresh_from_db()
        self.assertEqual(response.json(), task_body(task))

    def test_patch_changes_only_what_it_names(self):
        task = TaskFactory(project__owner=self.user, title="Keep", assignee=self.user)

        response = self.client.patch(f"/tasks/{task.id}/", {"assignee": None}, format="json")

        self.assertEqual(response.status_code, 200)
        self.assertEqual((response.json()["title"], response.json()["assignee"]), ("Keep", None))

    def test_completing_a_task_sets_completed_at_and_reopening_clears_it(self):
        task = TaskFactory(project__owner=self.user)

        completed = self.client.patch(
            f"/tasks/{task.id}/", {"status": "completed"}, format="json"
        ).json()
        again = self.client.patch(
            f"/tasks/{task.id}/", {"title": "still done"}, format="json"
        ).json()
        reopened = self.client.patch(
            f"/tasks/{task.id}/", {"status": "pending"}, format="json"
        ).json()

        self.assertIsNotNone(completed["completed_at"])
        self.assertEqual(again["completed_at"], completed["completed_at"])
        self.assertIsNone(reopened["completed_at"])

    def test_changing_the_due_date_re_arms_the_reminder(self):
        sent = timezone.now()
        task = TaskFactory(project__owner=self.user, reminder_sent_at=sent)

        same = self.client.patch(
            f"/tasks/{task.id}/", {"due_date": iso(task.due_date)}, format="json"
        ).json()
        moved = self.client.patch(
            f"/tasks/{task.id}/", {"due_date": "2040-01-01T00:00:00Z"}, format="json"
        ).json()

        self.assertEqual(same["reminder_sent_at"], iso(sent))
        self.assertIsNone(moved["reminder_sent_at"])

    def test_an_invalid_update_changes_nothing(self):
        task = TaskFactory(project__owner=self.user, title="Keep")

        response = self.client.patch(
            f"/tasks/{task.id}/", {"title": "", "status": "nope"}, format="json"
        )

        self.assertEqual(response.status_code, 400)
        self.assertEqual(set(response.json()), {"title", "status"})
        task.refresh_from_db()
        self.assertEqual(task.title, "Keep")

    def test_deleting_a_task_deletes_its_comments(self):
        task = TaskFactory(project__owner=self.user)
        CommentFactory(task=task)

        response = self.client.delete(f"/tasks/{task.id}/")

        self.assertEqual(response.status_code, 204)
        self.assertFalse(Task.objects.exists())

    def test_unknown_ids_are_404(self):
        for method in ("get", "put", "patch", "delete"):
            with self.subTest(method):
                response = getattr(self.client, method)("/tasks/12345/", {}, format="json")
                self.assertEqual(response.status_code, 404)
                self.assertEqual(response.json(), {"detail": "No Task matches the given query."})

    def test_unauthenticated_requests_are_401(self):
        task = TaskFactory(project__owner=self.user)
        self.client.credentials()
        for method, path in [
            ("get", "/tasks/"),
            ("post", "/tasks/"),
            ("get", f"/tasks/{task.id}/"),
            ("delete", f"/tasks/{task.id}/"),
        ]:
            with self.subTest(method=method, path=path):
                self.assertEqual(getattr(self.client, method)(path).status_code, 401)
        self.assertTrue(Task.objects.filter(id=task.id).exists())


@urls
class TaskListTests(APITest):
    def ids(self, query: str = "") -> list[int]:
        response = self.client.get(f"/tasks/{query}")
        self.assertEqual(response.status_code, 200, response.content)
        return [task["id"] for task in response.json()["results"]]

    def test_the_list_is_a_page_of_whole_tasks_by_id(self):
        tasks = [
            TaskFactory(project__owner=self.user, assignee=self.user),
            TaskFactory(project__members=[(self.user, "viewer")]),
            TaskFactory(project__owner=self.user, status="completed"),
        ]
        TaskFactory()  # of a project alice is not in: neither listed nor counted

        with self.assertNumQueries(4):  # the caller, their memberships, the count, the page
            response = self.client.get("/tasks/")

        self.assertEqual(
            response.json(),
            {"count": 3, "next": None, "previous": None, "results": [task_body(t) for t in tasks]},
        )

    def test_list_query_count_does_not_grow_with_the_page(self):
        for task in TaskFactory.create_batch(30, project__owner=self.user, assignee=UserFactory()):
            CommentFactory(task=task)

        with self.assertNumQueries(4):
            self.client.get("/tasks/")

    def test_comment_count_counts_each_tasks_comments(self):
        task = TaskFactory(project__owner=self.user)

        comment_create(actor=None, task=task, author="a", content="one")
        comment_create(actor=None, task=task, author="a", content="two")

        self.assertEqual(self.client.get(f"/tasks/{task.id}/").json()["comment_count"], 2)

    def test_filter_by_project(self):
        task = TaskFactory(project__owner=self.user)
        TaskFactory(project__owner=self.user)

        self.assertEqual(self.ids(f"?project={task.project_id}"), [task.id])

    def test_filter_by_status(self):
        TaskFactory(project__owner=self.user)
        done = TaskFactory(project__owner=self.user, status="completed")

        self.assertEqual(self.ids("?status=completed"), [done.id])

    def test_filter_by_assignee_username(self):
        mine = TaskFactory(project__owner=self.user, assignee=self.user)
        TaskFactory(project__owner=self.user, assignee=UserFactory())
        TaskFactory(project__owner=self.user)

        self.assertEqual(self.ids("?assignee=alice"), [mine.id])

    def test_filter_by_due_window(self):
        base = datetime(2030, 1, 1, tzinfo=UTC)
        early, middle, late = (
            TaskFactory(project__owner=self.user, due_date=base + timedelta(days=n))
            for n in (0, 1, 2)
        )

        self.assertEqual(self.ids("?due_before=2030-01-02T00:00:00Z"), [early.id])
        self.assertEqual(self.ids("?due_after=2030-01-02T00:00:00Z"), [late.id])
        self.assertEqual(
            self.ids("?due_after=2030-01-01T00:00:00Z&due_before=2030-01-03T00:00:00Z"), [middle.id]
        )

    def test_search_matches_title_or_description(self):
        by_title = TaskFactory(project__owner=self.user, title="Fix the Router")
        by_description = TaskFactory(project__owner=self.user, description="router is down")
        TaskFactory(project__owner=self.user, title="Other")

        self.assertEqual(self.ids("?search=ROUTER"), [by_title.id, by_description.id])

    def test_ordering_by_each_allowed_field_with_id_as_tie_breaker(self):
        base = datetime(2030, 1, 1, tzinfo=UTC)
        a = TaskFactory(
            project__owner=self.user, due_date=base + timedelta(days=2), status="pending"
        )
        b = TaskFactory(project__owner=self.user, due_date=base, status="completed")
        c = TaskFactory(
            project__owner=self.user, due_date=base + timedelta(days=1), status="pending"
        )

        self.assertEqual(self.ids("?ordering=due_date"), [b.id, c.id, a.id])
        self.assertEqual(self.ids("?ordering=-due_date"), [a.id, c.id, b.id])
        self.assertEqual(self.ids("?ordering=status"), [b.id, a.id, c.id])
        self.assertEqual(self.ids("?ordering=-id"), [c.id, b.id, a.id])
        self.assertEqual(self.ids("?ordering=created_at"), [a.id, b.id, c.id])
        self.assertEqual(self.ids("?ordering=-updated_at"), [c.id, b.id, a.id])

    def test_filters_combine(self):
        project = ProjectFactory(owner=self.user)
        hit = TaskFactory(project=project, status="in_progress", title="alpha")
        TaskFactory(project=project, status="pending", title="alpha")
        TaskFactory(project__owner=self.user, status="in_progress", title="alpha")

        self.assertEqual(self.ids(f"?project={project.id}&status=in_progress&search=alp"), [hit.id])

    def test_unknown_filter_values_are_400(self):
        cases = {
            "?project=999": "project",
            "?project=abc": "project",
            f"?project={10**30}": "project",
            "?status=done": "status",
            "?assignee=nobody": "assignee",
            "?due_before=soon": "due_before",
            "?due_after=2030-13-01T00:00:00Z": "due_after",
            "?ordering=title": "ordering",
            "?search=a%00b": "search",
            "?assignee=a%00b": "assignee",
            "?project=1%00": "project",
            "?status=%00": "status",
        }
        for query, field in cases.items():
            with self.subTest(query):
                response = self.client.get(f"/tasks/{query}")
                self.assertEqual(response.status_code, 400)
                self.assertEqual(list(response.json()), [field])

    def test_pagination_clamps_page_size(self):
        TaskFactory.create_batch(3, project__owner=self.user)

        page = self.client.get("/tasks/?page_size=2").json()

        self.assertEqual((page["count"], len(page["results"])), (3, 2))
        self.assertEqual(page["next"], "http://testserver/tasks/?page=2&page_size=2")
