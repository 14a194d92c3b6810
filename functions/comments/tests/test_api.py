"""The comments function's endpoints, against PostgreSQL."""

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from common.domain.models import Comment, Task
from common.tests.base import APITest, iso
from common.tests.factories import CommentFactory, TaskFactory

urls = override_settings(ROOT_URLCONF="functions.comments.urls")


def comment_body(comment: Comment) -> dict:
    return {
        "id": comment.id,
        "task": comment.task_id,
        "author": comment.author,
        "content": comment.content,
        "created_at": iso(comment.created_at),
    }


@urls
class CommentCreateTests(APITest):
    def setUp(self):
        super().setUp()
        self.task = TaskFactory(project__owner=self.user)

    def post(self, body: dict, task_id: int | None = None):
        return self.client.post(f"/tasks/{task_id or self.task.id}/comments/", body, format="json")

    def test_adding_a_comment_answers_201_and_counts_it_on_the_task(self):
        response = self.post({"content": "Looks good"})

        self.assertEqual(response.status_code, 201)
        comment = Comment.objects.get()
        self.assertEqual(response.json(), comment_body(comment))
        self.assertEqual((comment.task, comment.author), (self.task, "alice"))
        self.assertEqual(Task.objects.get().comment_count, 1)

    def test_the_author_is_always_the_caller_whatever_the_body_says(self):
        for author in ("Bob", "", "a" * 256, None):
            with self.subTest(author=author):
                response = self.post({"content": "Mine", "author": author})
                self.assertEqual(response.status_code, 201)
                self.assertEqual(response.json()["author"], "alice")
        self.assertEqual(set(Comment.objects.values_list("author", flat=True)), {"alice"})

    def test_the_task_comes_from_the_url_not_the_body(self):
        other = TaskFactory(project__owner=self.user)

        response = self.post({"content": "Here", "task": other.id})

        self.assertEqual(response.json()["task"], self.task.id)

    def test_invalid_comments_are_refused_and_nothing_is_stored(self):
        cases = {
            "blank content": ({"content": "  "}, {"content": ["This field may not be blank."]}),
            "missing content": ({}, {"content": ["This field is required."]}),
        }
        for case, (body, errors) in cases.items():
            with self.subTest(case):
                response = self.post(body)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json(), errors)
        self.assertFalse(Comment.objects.exists())
        self.assertEqual(Task.objects.get().comment_count, 0)

    def test_commenting_on_an_unknown_task_is_a_404_even_with_a_bad_body(self):
        for body in ({"content": "x"}, {}):
            with self.subTest(body=body):
                response = self.post(body, task_id=999)
                self.assertEqual(response.status_code, 404)
                self.assertEqual(response.json(), {"detail": "No Task matches the given query."})

    def test_without_a_token_it_is_401_before_404(self):
        self.client.credentials()

        self.assertEqual(self.post({"content": "x"}, task_id=999).status_code, 401)
        self.assertEqual(self.client.get(f"/tasks/{self.task.id}/comments/").status_code, 401)


@urls
class CommentListTests(APITest):
    def test_a_tasks_comments_are_listed_oldest_first(self):
        task = TaskFactory(project__owner=self.user)
        now = timezone.now()
        later = CommentFactory(task=task)
        earlier = CommentFactory(task=task)
        Comment.objects.filter(id=earlier.id).update(created_at=now - timedelta(minutes=1))
        Comment.objects.filter(id=later.id).update(created_at=now)
        CommentFactory()  # another task's
        earlier.refresh_from_db()
        later.refresh_from_db()

        with self.assertNumQueries(5):  # the caller, the task, the role, the count, the page
            response = self.client.get(f"/tasks/{task.id}/comments/")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.json(),
            {
                "count": 2,
                "next": None,
                "previous": None,
                "results": [comment_body(earlier), comment_body(later)],
            },
        )

    def test_comments_of_an_unknown_task_are_a_404(self):
        response = self.client.get("/tasks/999/comments/")

        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"detail": "No Task matches the given query."})

    def test_other_methods_are_405(self):
        task = TaskFactory(project__owner=self.user)

        for method in ("put", "patch", "delete"):
            with self.subTest(method):
                self.assertEqual(
                    getattr(self.client, method)(f"/tasks/{task.id}/comments/").status_code, 405
                )
