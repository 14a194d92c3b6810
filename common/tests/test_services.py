"""Services given stale copies, as views are when another write commits first."""

import pytest
from django.test import TestCase
from django.utils import timezone
from rest_framework.exceptions import NotFound

from common.api.errors import exception_handler
from common.domain import services
from common.domain.models import Event, Project, Task
from common.tests.factories import ProjectFactory, TaskFactory


def new_task(project):
    return services.task_create(actor=None, project=project, title="t", due_date=timezone.now())


class StaleCopyTests(TestCase):
    def test_updating_a_project_with_a_stale_copy_keeps_seq_and_other_fields(self):
        stale = ProjectFactory(name="old", description="kept")
        Project.objects.filter(pk=stale.pk).update(description="changed meanwhile")
        new_task(stale)  # seq 1, committed after the stale copy was read

        services.project_update(actor=None, project=stale, name="new")
        new_task(stale)

        self.assertEqual(list(Event.objects.values_list("seq", flat=True)), [1, 2, 3])
        fresh = Project.objects.get(pk=stale.pk)
        self.assertEqual((fresh.name, fresh.description), ("new", "changed meanwhile"))

    def test_writing_a_task_deleted_meanwhile_raises_does_not_exist_and_logs_nothing(self):
        stale = TaskFactory()
        Task.objects.filter(pk=stale.pk).delete()

        for write in (
            lambda: services.task_update(actor=None, task=stale, title="x"),
            lambda: services.task_delete(actor=None, task=stale),
            lambda: services.comment_create(actor=None, task=stale, author="a", content="c"),
        ):
            with self.subTest(write=write), self.assertRaises(Task.DoesNotExist):
                write()
        self.assertFalse(Event.objects.exists())

    def test_writing_into_a_project_deleted_meanwhile_raises_does_not_exist(self):
        stale = ProjectFactory()
        Project.objects.filter(pk=stale.pk).delete()

        with self.assertRaises(Project.DoesNotExist):
            new_task(stale)
        with self.assertRaises(Project.DoesNotExist):
            services.project_delete(actor=None, project=stale)

    def test_a_task_moved_meanwhile_is_deleted_from_the_project_it_is_in(self):
        stale = TaskFactory()
        elsewhere = ProjectFactory()
        Task.objects.filter(pk=stale.pk).update(project=elsewhere)

        services.task_delete(actor=None, task=stale)

        self.assertEqual(Event.objects.get().project_id, elsewhere.id)

    def test_a_vanished_row_answers_404(self):
        response = exception_handler(Task.DoesNotExist(), {})

        self.assertEqual(
            (response.status_code, response.data), (404, {"detail": NotFound.default_detail})
        )


def test_the_compiled_locks_are_the_querysets_sql_with_their_values_as_parameters(db):
    # services compiles its two locks once per database; this pins that Django still renders
    # each value as one parameter and the locks as FOR NO KEY UPDATE / FOR UPDATE OF the task,
    # the task's lock reading the user's role in the same statement.
    from django.db import transaction

    from common.domain.services import _project_lock, _task_lock
    from common.domain.statements import compiled

    with transaction.atomic():
        project_sql, project_params = compiled(_project_lock, 5)
        task_sql, task_params = compiled(_task_lock, 7, 3)

    assert (project_params, sorted(task_params)) == ([5], [3, 7])
    assert project_sql.endswith("FOR NO KEY UPDATE")
    assert '"common_membership"' in task_sql
    assert task_sql.endswith('FOR UPDATE OF "common_task"')


def test_a_write_reads_the_role_with_the_tasks_lock_and_refuses_a_removed_member(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.exceptions import NotFound, PermissionDenied

    from common.domain.models import Membership
    from common.tests.factories import MembershipFactory, UserFactory

    task = TaskFactory()
    member = MembershipFactory(project=task.project, user=UserFactory(), role="member").user
    with CaptureQueriesContext(connection) as queries:
        services.task_update(actor=member, task=task, title="by a member")
    locks = [q["sql"] for q in queries if q["sql"].endswith('FOR UPDATE OF "common_task"')]
    assert len(locks) == 1
    assert '"common_membership"' in locks[0]
    assert not any(q["sql"].startswith('SELECT "common_membership"') for q in queries)

    Membership.objects.filter(user=member).update(role="viewer")
    with pytest.raises(PermissionDenied):
        services.task_update(actor=member, task=task, title="by a viewer")
    Membership.objects.filter(user=member).delete()
    with pytest.raises(NotFound):
        services.task_delete(actor=member, task=task)


def test_the_events_representation_is_the_serializers(db):
    from common.api.serializers import CommentSerializer, ProjectSerializer, TaskSerializer
    from common.domain.models import Comment
    from common.domain.services import _representation
    from common.tests.factories import CommentFactory, UserFactory

    task = TaskFactory(assignee=UserFactory())
    comment = Comment.objects.get(pk=CommentFactory(task=task).pk)

    assert _representation(TaskSerializer, task) == TaskSerializer(task).data
    assert _representation(ProjectSerializer, task.project) == ProjectSerializer(task.project).data
    assert _representation(CommentSerializer, comment) == CommentSerializer(comment).data
