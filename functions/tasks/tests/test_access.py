"""Who a task may go to, and where it may move: the rules of CONTRACT section 1b on tasks."""

from django.test import override_settings

from common.domain.models import Task
from common.tests.base import APITest
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory


@override_settings(ROOT_URLCONF="functions.tasks.urls")
class TaskAccessTests(APITest):
    def setUp(self):
        super().setUp()
        self.viewer, self.member, self.stranger = (
            UserFactory(username=name) for name in ("vic", "meg", "sam")
        )
        self.project = ProjectFactory(
            owner=self.user, members=[(self.viewer, "viewer"), (self.member, "member")]
        )
        self.task = TaskFactory(project=self.project)

    def patch(self, **fields):
        return self.client.patch(f"/tasks/{self.task.id}/", fields, format="json")

    def test_the_assignee_must_be_a_member_with_role_member_or_above(self):
        for username, status in (("vic", 400), ("sam", 400), ("meg", 200), ("alice", 200)):
            with self.subTest(username):
                response = self.patch(assignee=username)
                self.assertEqual(response.status_code, status, response.content)
                if status == 400:
                    self.assertEqual(list(response.json()), ["assignee"])
        self.assertEqual(Task.objects.get().assignee, self.user)

    def test_a_move_to_a_project_the_caller_cannot_see_is_a_400_on_project(self):
        response = self.patch(project=ProjectFactory().id)

        self.assertEqual(response.status_code, 400)
        self.assertEqual(list(response.json()), ["project"])

    def test_a_move_to_a_project_where_the_caller_is_only_viewer_is_a_403(self):
        elsewhere = ProjectFactory(members=[(self.user, "viewer")])

        response = self.patch(project=elsewhere.id)

        self.assertEqual(response.status_code, 403)
        self.assertEqual(Task.objects.get().project, self.project)

    def test_a_move_keeps_the_assignee_only_if_they_may_hold_it_there(self):
        self.patch(assignee="meg")
        elsewhere = ProjectFactory(owner=self.user)

        response = self.patch(project=elsewhere.id)

        self.assertEqual(response.status_code, 400)
        self.assertEqual(list(response.json()), ["assignee"])
        self.assertEqual(self.patch(project=elsewhere.id, assignee=None).status_code, 200)
