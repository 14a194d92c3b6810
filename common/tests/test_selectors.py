"""Reads: the task JSON of a list page, from `.values_list()`, is what TaskSerializer writes."""

import json
from datetime import UTC, datetime, timedelta

from django.test import TestCase
from django.utils import timezone

from common.api.serializers import TaskSerializer
from common.domain.models import Task
from common.domain.selectors import task_list, task_rows_json
from common.tests.factories import TaskFactory, UserFactory


class TaskRowsJsonTests(TestCase):
    def test_it_matches_the_serializer_field_for_field(self):
        bob = UserFactory(username='bób "quoted"')
        TaskFactory(title='Line\nbreak, "quotes", \\ and é 🚀', description="", assignee=bob)
        TaskFactory(due_date=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))  # whole second
        TaskFactory(due_date=datetime(999, 1, 1, 0, 0, 0, 7, tzinfo=UTC), status="completed")
        done = TaskFactory(status="completed", completed_at=timezone.now())
        Task.objects.filter(pk=done.pk).update(reminder_sent_at=timezone.now() - timedelta(days=1))
        queryset = task_list()

        built = json.loads(task_rows_json(queryset))

        self.assertEqual(built, json.loads(json.dumps(TaskSerializer(queryset, many=True).data)))
        self.assertEqual(len(built), 4)

    def test_a_page_slice_keeps_its_order_and_an_empty_one_is_an_empty_array(self):
        tasks = TaskFactory.create_batch(5)

        page = json.loads(task_rows_json(task_list().order_by("-id")[1:3]))

        self.assertEqual([row["id"] for row in page], [tasks[3].id, tasks[2].id])
        self.assertEqual(task_rows_json(task_list().none()), b"[]")
        self.assertEqual(task_rows_json(task_list()[5:5]), b"[]")

    def test_a_deep_page_is_read_by_its_ids_in_the_order_asked_for(self):
        tasks = TaskFactory.create_batch(6)
        ordered = task_list().order_by("-due_date", "id")

        page = json.loads(task_rows_json(ordered[2:5]))

        self.assertEqual([row["id"] for row in page], [task.id for task in ordered[2:5]])
        self.assertEqual(len(tasks), 6)
