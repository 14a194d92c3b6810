"""Tasks in the admin go through task_*; comments are read-only."""

from datetime import timedelta
from unittest import mock

from django.contrib.messages import get_messages
from django.utils import timezone

from common.domain import services
from common.domain.models import Task
from common.tests.factories import CommentFactory, ProjectFactory, TaskFactory, UserFactory
from functions.admin.tests.base import AdminTest, events, version

ADD = "/admin/common/task/add/"
task_delete = services.task_delete


class TaskAdminTests(AdminTest):
    def form(self, project, **fields) -> dict:
        due = timezone.now() + timedelta(days=2)
        data = {"project": project.pk, "title": "From the admin", "description": ""}
        data |= {"status": "pending", "due_date_0": due.date(), "due_date_1": "12:00:00"}
        return data | fields

    def test_adding_a_task_logs_task_created_and_bumps_its_projects_lists(self):
        bob = UserFactory(username="bob")
        project = ProjectFactory(members=[bob])
        before = version(f"tasks:project:{project.pk}")

        response = self.submit(ADD, self.form(project, assignee=bob.pk))

        self.assertEqual(response.status_code, 302, response.content)
        task = Task.objects.get()
        self.assertEqual((task.title, task.assignee), ("From the admin", bob))
        self.assertEqual(events(project.pk), [("task.created", None)])
        self.assertGreater(version(f"tasks:project:{project.pk}"), before)

    def test_a_task_assigned_to_a_non_member_is_refused_on_its_assignee(self):
        project, stranger = ProjectFactory(), UserFactory(username="stranger")

        response = self.submit(ADD, self.form(project, assignee=stranger.pk))

        self.assertRefused(response, "assignee", "Not a member of the task's project")
        self.assertFalse(Task.objects.exists())
        self.assertEqual(events(project.pk), [])

    def test_a_task_assigned_to_a_viewer_is_refused_too(self):
        viewer = UserFactory(username="viewer")
        project = ProjectFactory(members=[(viewer, "viewer")])

        response = self.submit(ADD, self.form(project, assignee=viewer.pk))

        self.assertRefused(response, "assignee", "with role member or above")
        self.assertFalse(Task.objects.exists())

    def test_changing_a_task_logs_task_updated_and_completes_it(self):
        task = TaskFactory(title="Before")
        path = f"/admin/common/task/{task.pk}/change/"

        response = self.submit(path, self.form(task.project, title="After", status="completed"))

        self.assertEqual(response.status_code, 302, response.content)
        task.refresh_from_db()
        self.assertEqual((task.title, task.status), ("After", "completed"))
        self.assertIsNotNone(task.completed_at)  # the service's rule, not the form's
        self.assertEqual(events(task.project_id), [("task.updated", None)])

    def test_moving_a_task_away_from_its_assignees_project_is_refused(self):
        bob = UserFactory(username="bob")
        task = TaskFactory(project=ProjectFactory(members=[bob]), assignee=bob)
        elsewhere = ProjectFactory()
        path = f"/admin/common/task/{task.pk}/change/"

        response = self.submit(path, self.form(elsewhere, assignee=bob.pk))

        self.assertRefused(response, "assignee", "Not a member of the task's project")
        task.refresh_from_db()
        self.assertNotEqual(task.project, elsewhere)

    def test_deleting_a_task_logs_task_deleted_and_bumps_its_lists(self):
        task = TaskFactory()
        CommentFactory(task=task)
        before = version("tasks")

        response = self.submit(f"/admin/common/task/{task.pk}/delete/", {"post": "yes"})

        self.assertEqual(response.status_code, 302, response.content)
        self.assertFalse(Task.objects.exists())
        self.assertEqual(events(task.project_id), [("task.deleted", None)])
        self.assertGreater(version("tasks"), before)

    def test_the_bulk_delete_action_deletes_each_task_through_the_service(self):
        tasks = TaskFactory.create_batch(2)

        response = self.submit(
            "/admin/common/task/",
            {"action": "delete_selected", "_selected_action": [t.pk for t in tasks], "post": "yes"},
        )

        self.assertEqual(response.status_code, 302, response.content)
        self.assertFalse(Task.objects.exists())
        for task in tasks:
            self.assertEqual(events(task.project_id), [("task.deleted", None)])

    def test_a_bulk_delete_meeting_a_task_deleted_meanwhile_rolls_back_and_says_so(self):
        kept, gone = TaskFactory.create_batch(2)

        def delete_racing_another_writer(*, actor, task):
            if task.pk == kept.pk:
                Task.objects.filter(pk=gone.pk).delete()  # another writer, meanwhile
            return task_delete(actor=actor, task=task)

        with mock.patch.object(services, "task_delete", delete_racing_another_writer):
            response = self.submit(
                "/admin/common/task/",
                {
                    "action": "delete_selected",
                    "_selected_action": [kept.pk, gone.pk],
                    "post": "yes",
                },
            )

        self.assertEqual(response.status_code, 302)
        shown = [str(message) for message in get_messages(response.wsgi_request)]
        self.assertEqual(shown, ["It was deleted meanwhile."])
        self.assertTrue(Task.objects.filter(pk=kept.pk).exists())  # the action rolled back whole
        self.assertEqual(events(kept.project_id), [])


class CommentAdminTests(AdminTest):
    def test_comments_are_shown_and_never_written(self):
        comment = CommentFactory()

        shown = self.client.get(f"/admin/common/comment/{comment.pk}/change/")
        add = self.client.get("/admin/common/comment/add/")
        delete = self.client.post(f"/admin/common/comment/{comment.pk}/delete/", {"post": "yes"})

        self.assertContains(shown, comment.content)
        self.assertEqual((add.status_code, delete.status_code), (403, 403))
