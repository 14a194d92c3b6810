"""The publish path: logged in the write's transaction, sent after commit, never lost."""

import json
from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.db import connection, transaction
from django.test import TestCase, TransactionTestCase, override_settings
from django.utils import timezone

from common.domain import events, services
from common.domain.events import EventType, envelope, publish
from common.domain.models import Event, Project
from common.tests.base import APITest
from common.tests.factories import ProjectFactory, TaskFactory

CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there


class PublishPlanTests(TestCase):
    def test_publishing_finds_its_projects_by_key_however_many_there_are(self):
        # The items go in as one JSON document, which the planner guesses at 100 rows: joined
        # to the projects by it, every publish scanned the whole project table, twice (8 ms a
        # write at 10,000 projects). Their ids go in as an array, whose length it knows.
        Project.objects.bulk_create(Project(name=f"p{i}") for i in range(5000))
        project = Project.objects.order_by("-id").first()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE common_project")
            params = {"type": "task.updated", "now": timezone.now(), "actor": None}
            params |= {"items": json.dumps([{"project": project.pk, "data": {}}])}
            params["projects"] = [project.pk]
            cursor.execute("EXPLAIN (FORMAT JSON) " + events._LOG_MANY, params)
            plan = cursor.fetchone()[0]

        def scans(node: dict) -> list[tuple[str, str]]:
            found = [(node["Node Type"], node.get("Relation Name", ""))]
            return found + [scan for child in node.get("Plans", []) for scan in scans(child)]

        read = [scan for scan in scans(plan[0]["Plan"]) if scan[1] == "common_project"]
        self.assertTrue(read)
        self.assertNotIn(("Seq Scan", "common_project"), read)


class PublishTests(TestCase):
    def test_each_write_logs_one_event_with_the_next_seq_of_its_project(self):
        project = services.project_create(actor=None, name="P")
        task = services.task_create(actor=None, project=project, title="t", due_date=timezone.now())
        services.comment_create(actor=None, task=task, author="a", content="c")
        services.task_update(actor=None, task=task, title="u")
        other = ProjectFactory()
        services.task_create(actor=None, project=other, title="o", due_date=timezone.now())

        logged = list(Event.objects.values_list("project_id", "seq", "type"))

        self.assertEqual(
            logged,
            [
                (project.id, 1, "project.created"),
                (project.id, 2, "task.created"),
                (project.id, 3, "comment.created"),
                (project.id, 4, "task.updated"),
                (other.id, 1, "task.created"),
            ],
        )
        self.assertEqual(Project.objects.get(id=project.id).event_seq, 4)

    def test_a_rolled_back_write_leaves_no_event_and_no_gap(self):
        project = ProjectFactory()
        with self.assertRaises(RuntimeError), transaction.atomic():
            services.task_create(actor=None, project=project, title="t", due_date=timezone.now())
            raise RuntimeError

        services.task_create(actor=None, project=project, title="t", due_date=timezone.now())

        self.assertEqual(list(Event.objects.values_list("seq", flat=True)), [1])

    def test_the_envelope_has_the_contract_fields(self):
        task = TaskFactory()
        event = services.task_update(actor=None, task=task, title="x") and Event.objects.get()

        self.assertEqual(
            envelope(event),
            {
                "type": "task.updated",
                "project": task.project_id,
                "seq": 1,
                "id": str(event.id),
                "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
                "actor": None,
                "data": event.data,
            },
        )

    def test_prune_events_deletes_only_events_past_retention(self):
        project = ProjectFactory()
        for _ in range(3):
            services.task_create(actor=None, project=project, title="t", due_date=timezone.now())
        Event.objects.filter(seq=1).update(
            occurred_at=timezone.now() - timedelta(days=7, minutes=1)
        )
        Event.objects.filter(seq=2).update(occurred_at=timezone.now() - timedelta(days=6, hours=23))
        out = StringIO()

        call_command("prune_events", stdout=out)

        self.assertEqual(list(Event.objects.values_list("seq", flat=True)), [2, 3])
        self.assertEqual(out.getvalue().strip(), "pruned 1 events older than 7 days")


class PublishOutsideTransactionTests(TransactionTestCase):
    def test_publish_refuses_to_run_outside_a_transaction(self):
        project = ProjectFactory()

        with self.assertRaisesMessage(RuntimeError, "inside the write's transaction"):
            publish(type=EventType.TASK_DELETED, project_id=project.id, data={}, actor=None)
        self.assertFalse(Event.objects.exists())


@override_settings(ROOT_URLCONF="functions.tasks.urls", CHANNEL_REDIS_URL=CLOSED_REDIS)
class RedisDownTests(APITest):
    def test_a_write_succeeds_and_its_event_stays_in_the_log_when_redis_is_down(self):
        project = ProjectFactory(owner=self.user)
        body = {"project": project.id, "title": "t", "due_date": "2030-01-01T00:00:00Z"}

        with (
            self.assertLogs("common.domain.events", "WARNING") as logs,
            self.captureOnCommitCallbacks(execute=True),
        ):
            response = self.client.post("/tasks/", body, format="json")

        self.assertEqual(response.status_code, 201)
        self.assertEqual(Event.objects.get().data, response.json())
        self.assertIn("not pushed live (they stay in the log)", logs.output[0])


class OneRoundTripTests(TestCase):
    """With the events' channels on the cache's Redis, the bumps and PUBLISHes leave together."""

    def test_the_bump_and_the_publish_go_in_one_transaction_on_the_caches_client(self):
        import json

        import redis
        from django.conf import settings

        from common.infra import event_push
        from common.infra.cache.invalidation import cache_redis_url
        from common.infra.cache.versions import read_versions

        self.assertEqual(cache_redis_url(), settings.CHANNEL_REDIS_URL)
        project = ProjectFactory()
        subscriber = redis.Redis.from_url(settings.CHANNEL_REDIS_URL)
        pubsub = subscriber.pubsub()
        pubsub.subscribe(event_push.event_channel(project.id))
        before = read_versions([f"tasks:project:{project.id}"])[f"tasks:project:{project.id}"]

        from unittest import mock

        separate = mock.patch.object(event_push, "_publish", wraps=event_push._publish)
        with separate as separate_publish, self.captureOnCommitCallbacks(execute=True):
            task = services.task_create(
                actor=None, project=project, title="t", due_date=timezone.now()
            )

        message = None
        while message is None or message["type"] != "message":
            message = pubsub.get_message(timeout=2)
            self.assertIsNotNone(message, "the event was not published")
        pubsub.close()
        subscriber.close()
        self.assertEqual(json.loads(message["data"])["data"]["id"], task.id)
        after = read_versions([f"tasks:project:{project.id}"])[f"tasks:project:{project.id}"]
        self.assertNotEqual(after, before)
        separate_publish.assert_not_called()  # nothing pushed apart from the bump
