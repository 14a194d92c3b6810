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


class ProjectForWriteTests(TestCase):
    """The project a create validates and writes in: locked, with the caller's role, at once."""

    def setUp(self):
        from common.tests.factories import UserFactory

        self.viewer, self.member, self.stranger = UserFactory(), UserFactory(), UserFactory()
        self.project = ProjectFactory(members=[(self.viewer, "viewer"), (self.member, "member")])

    def for_write(self, actor, project_id):
        from django.db import transaction

        with transaction.atomic():
            return services.project_for_write(actor=actor, project_id=project_id)

    def test_it_is_the_project_with_each_callers_role(self):
        owner = self.project.owner
        for actor, role in (
            (owner, "owner"),
            (self.member, "member"),
            (self.viewer, "viewer"),
            (self.stranger, None),
            (None, None),
        ):
            with self.subTest(role):
                locked = self.for_write(actor, self.project.id)
                self.assertEqual(locked.caller_role, role)
                fresh = Project.objects.get(pk=self.project.pk)
                fields = [field.attname for field in Project._meta.concrete_fields]
                self.assertEqual(
                    [getattr(locked, name) for name in fields],
                    [getattr(fresh, name) for name in fields],
                )
                self.assertFalse(locked._state.adding)

    def test_a_gone_project_or_an_id_no_row_has_does_not_exist(self):
        gone = ProjectFactory()
        gone_id = gone.id
        gone.delete()
        for project_id in (gone_id, 0, -1, 2**63, True, "1", 1.0, None):
            with self.subTest(project_id), self.assertRaises(Project.DoesNotExist):
                self.for_write(self.member, project_id)

    def test_the_lock_then_the_role_in_one_round_trip(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            self.for_write(self.member, self.project.id)
        [sql] = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
        lock, role = sql.split("; ")
        self.assertTrue(lock.startswith('SELECT "common_project"."id"'))
        self.assertTrue(lock.endswith("FOR NO KEY UPDATE"))
        self.assertTrue(role.startswith('SELECT "common_membership"."role"'))

    def test_a_task_writes_project_is_the_one_locked_with_it(self):
        from django.db import connection, transaction
        from django.test.utils import CaptureQueriesContext

        task = TaskFactory(project=self.project)
        named, unnamed = ProjectFactory(), ProjectFactory()
        with transaction.atomic():
            locked = services.task_for_write(
                actor=self.member, task_id=task.id, project_id=named.id
            )
            with CaptureQueriesContext(connection) as queries:
                own, other = (
                    services.project_for_write(actor=self.member, project_id=pk, task=locked)
                    for pk in (self.project.id, named.id)
                )
            self.assertEqual(len(queries), 0)  # both rows came with the lock
            with CaptureQueriesContext(connection) as queries:
                looked_up = services.project_for_write(
                    actor=self.member, project_id=unnamed.id, task=locked
                )
            self.assertEqual(len(queries), 1)  # not locked: looked up, as the field would
        self.assertEqual(own.caller_role, "member")  # the role read with the task's lock
        fields = [field.attname for field in Project._meta.concrete_fields]
        for project in (own, other, looked_up):
            fresh = Project.objects.get(pk=project.pk)
            self.assertEqual(
                [getattr(project, name) for name in fields],
                [getattr(fresh, name) for name in fields],
            )
        # Another project's role is left to the field and the service (role_of, after the lock).
        self.assertFalse(hasattr(other, "caller_role") or hasattr(looked_up, "caller_role"))

    def test_task_create_takes_it_as_it_is_and_refuses_a_viewer(self):
        from django.db import connection, transaction
        from django.test.utils import CaptureQueriesContext
        from rest_framework.exceptions import PermissionDenied

        def create(actor):
            with transaction.atomic():
                project = services.project_for_write(actor=actor, project_id=self.project.id)
                with CaptureQueriesContext(connection) as queries:
                    task = services.task_create(
                        actor=actor, project=project, title="t", due_date=timezone.now()
                    )
                return task, [q["sql"] for q in queries]

        task, statements = create(self.member)
        self.assertEqual(Task.objects.get().pk, task.pk)
        self.assertEqual(len(statements), 2)  # the insert and the event: no lock, role, savepoint
        self.assertTrue(statements[0].startswith('INSERT INTO "common_task"'))
        with self.assertRaises(PermissionDenied):
            create(self.viewer)
        self.assertEqual(Task.objects.count(), 1)
        self.assertEqual(Event.objects.filter(type="task.created").count(), 1)


def test_project_for_write_needs_the_writes_transaction(transactional_db):
    project = ProjectFactory()
    with pytest.raises(RuntimeError):
        services.project_for_write(actor=project.owner, project_id=project.id)
