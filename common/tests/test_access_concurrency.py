"""Membership changes racing writes, over real connections: one order or the other, never both.

The membership services take the project's row lock, as task writes do, and the task services
check the caller's role under it: a write either commits before a removal or is refused after.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, connections, transaction
from django.test import TransactionTestCase
from rest_framework.exceptions import APIException

from common.domain import memberships, services
from common.domain.models import Event, Membership, Project, Task
from common.tests.factories import MembershipFactory, ProjectFactory, TaskFactory, UserFactory

TIMEOUT = 10


def _in_thread(work):
    """Run `work` on its own connection; the thread and a box for its result or error."""
    box: dict = {}

    def run():
        try:
            box["result"] = work()
        except Exception as exc:  # handed to the test, which asserts on it
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def _wait_until_blocked_on_a_lock() -> None:
    """Wait until another connection of this database waits for a lock."""
    deadline = time.monotonic() + TIMEOUT
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("no connection ever waited for the project's lock")


def _seqs(project: Project) -> list[int]:
    return list(
        Event.objects.filter(project_id=project.id).order_by("seq").values_list("seq", flat=True)
    )


class RemovalRacesAWriteTests(TransactionTestCase):
    def setUp(self):
        self.owner, self.member = UserFactory(), UserFactory()
        self.project = ProjectFactory(owner=self.owner, members=[self.member])
        self.task = TaskFactory(project=self.project, title="before")

    def write(self):
        return services.task_update(actor=self.member, task=self.task, title="written")

    def test_a_write_that_waited_for_a_removal_is_refused(self):
        with transaction.atomic():
            memberships.membership_remove(actor=self.owner, project=self.project, user=self.member)
            thread, box = _in_thread(self.write)
            _wait_until_blocked_on_a_lock()
        thread.join(TIMEOUT)

        self.assertIsInstance(box.get("error"), APIException)
        self.assertEqual(box["error"].status_code, 404)
        self.assertEqual(Task.objects.get().title, "before")
        self.assertEqual(
            list(Event.objects.filter(project_id=self.project.id).values_list("type", flat=True)),
            ["member.removed"],
        )

    def test_a_create_that_waited_for_a_removal_is_refused(self):
        def create():
            with transaction.atomic():  # as the view's: the lock and role read as it validates
                project = services.project_for_write(actor=self.member, project_id=self.project.id)
                return services.task_create(
                    actor=self.member, project=project, title="created", due_date=self.task.due_date
                )

        with transaction.atomic():
            memberships.membership_remove(actor=self.owner, project=self.project, user=self.member)
            thread, box = _in_thread(create)
            _wait_until_blocked_on_a_lock()
        thread.join(TIMEOUT)

        self.assertIsInstance(box.get("error"), APIException)
        self.assertEqual(box["error"].status_code, 404)
        self.assertEqual(list(Task.objects.values_list("title", flat=True)), ["before"])
        self.assertEqual(
            list(Event.objects.filter(project_id=self.project.id).values_list("type", flat=True)),
            ["member.removed"],
        )

    def test_a_removal_that_waited_for_a_write_comes_after_it(self):
        with transaction.atomic():
            self.write()
            thread, box = _in_thread(
                lambda: memberships.membership_remove(
                    actor=self.owner, project=self.project, user=self.member
                )
            )
            _wait_until_blocked_on_a_lock()
        thread.join(TIMEOUT)

        self.assertNotIn("error", box)
        self.assertEqual(Task.objects.get().title, "written")
        self.assertFalse(Membership.objects.filter(user=self.member).exists())
        self.assertEqual(_seqs(self.project), [1, 2])


class ConcurrentWritesAndMembershipsTests(TransactionTestCase):
    def test_fifty_concurrent_writes_and_membership_changes_keep_seq_gap_free(self):
        owner = UserFactory()
        project = ProjectFactory(owner=owner)
        leaving = [MembershipFactory(project=project).user for _ in range(10)]
        tasks = [TaskFactory(project=project, assignee=user) for user in leaving]
        joining = UserFactory.create_batch(20)

        def work(number: int):
            if number < 20:
                return memberships.membership_add(
                    actor=owner, project=project, user=joining[number]
                )
            if number < 30:
                user = leaving[number - 20]
                return memberships.membership_remove(actor=owner, project=project, user=user)
            task = tasks[number % len(tasks)]
            return services.task_update(actor=owner, task=task, title=f"write {number}")

        def run(number: int):
            try:
                return work(number)
            finally:
                connections.close_all()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(run, range(50), timeout=60))

        project.refresh_from_db()
        # 20 added, 10 removed each with their one task unassigned, 20 task writes
        self.assertEqual(_seqs(project), list(range(1, 20 + 10 * 2 + 20 + 1)))
        self.assertEqual(project.event_seq, 60)
        self.assertEqual(Membership.objects.filter(project=project).count(), 1 + 20)
        self.assertFalse(Task.objects.filter(assignee__isnull=False).exists())
