"""GET /projects/{id}/events/: the event log as the websocket sends it (CONTRACT section 6).

That the envelopes are the websocket's own text, byte for byte, is in
realtime/tests/test_activity_feed.py (with the websocket's fixtures).
"""

import json
from datetime import timedelta

from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from common.domain import services
from common.domain.events import event_prune
from common.domain.models import Event
from common.tests.base import APITest
from common.tests.factories import MembershipFactory, ProjectFactory, UserFactory


def create_task(project, title="t"):
    return services.task_create(
        actor=project.owner, project=project, title=title, due_date=timezone.now()
    )


def feed(reader, project_id: int, query: str = ""):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(reader)}")
    with override_settings(ROOT_URLCONF="functions.projects.urls"):
        return client.get(f"/projects/{project_id}/events/{query}")


class ActivityFeedTests(APITest):
    def setUp(self):
        super().setUp()
        self.project = ProjectFactory(owner=self.user)
        for title in "abcde":
            create_task(self.project, title)

    def get(self, query=""):
        with override_settings(ROOT_URLCONF="functions.projects.urls"):
            return self.client.get(f"/projects/{self.project.id}/events/{query}")

    def test_after_and_limit_page_through_the_log_oldest_first(self):
        first = self.get("?after=1&limit=2").json()

        self.assertEqual([e["seq"] for e in first["results"]], [2, 3])
        self.assertEqual(
            first["next"], f"http://testserver/projects/{self.project.id}/events/?after=3&limit=2"
        )
        second = self.get("?after=3&limit=2").json()
        self.assertEqual([e["seq"] for e in second["results"]], [4, 5])
        self.assertIsNotNone(second["next"])  # a full page: the next may be empty
        self.assertEqual(self.get("?after=5&limit=2").json(), {"results": [], "next": None})
        everything = self.get().json()
        self.assertEqual([e["seq"] for e in everything["results"]], [1, 2, 3, 4, 5])
        self.assertIsNone(everything["next"])
        self.assertEqual(
            set(everything["results"][0]),
            {"type", "project", "seq", "id", "occurred_at", "actor", "data"},
        )
        self.assertEqual(len(self.get("?limit=100000").json()["results"]), 5)  # clamped to 500

    def test_an_after_older_than_what_is_kept_is_410_with_the_oldest_seq(self):
        Event.objects.filter(seq__lte=2).update(occurred_at=timezone.now() - timedelta(days=8))
        event_prune()

        response = self.get("?after=0")

        self.assertEqual(response.status_code, 410)
        self.assertEqual(response.json()["oldest"], 3)
        self.assertIn("detail", response.json())
        self.assertEqual(self.get("?after=1").status_code, 410)
        self.assertEqual([e["seq"] for e in self.get("?after=2").json()["results"]], [3, 4, 5])

    def test_when_every_event_is_pruned_a_cursor_before_the_latest_is_410(self):
        Event.objects.update(occurred_at=timezone.now() - timedelta(days=8))
        event_prune()

        self.assertEqual(self.get("?after=3").json()["oldest"], 6)
        self.assertEqual(self.get("?after=5").json(), {"results": [], "next": None})

    @override_settings(EVENT_RETENTION_DAYS=30)
    def test_event_retention_days_sets_how_long_events_are_kept(self):
        Event.objects.update(occurred_at=timezone.now() - timedelta(days=8))

        self.assertEqual(event_prune(), 0)
        self.assertEqual(len(self.get().json()["results"]), 5)

    def test_bad_numbers_are_400(self):
        for query in ("?after=-1", "?after=x", "?limit=1.5", "?after=%C2%B2"):
            with self.subTest(query=query):
                response = self.get(query)
                self.assertEqual(response.status_code, 400)
                self.assertIn("detail", response.json())

    def test_viewers_read_it_and_a_non_member_gets_404(self):
        viewer = MembershipFactory(project=self.project, role="viewer").user

        self.assertEqual(feed(viewer, self.project.id).status_code, 200)
        self.assertEqual(feed(UserFactory(), self.project.id).status_code, 404)
        self.assertEqual(feed(viewer, 999999).status_code, 404)
        self.client.credentials()
        self.assertEqual(self.get().status_code, 401)

    def test_envelopes_are_those_the_log_holds(self):
        results = self.get("?limit=1").json()["results"]
        event = Event.objects.get(seq=1)

        self.assertEqual(
            results,
            [
                {
                    "type": "task.created",
                    "project": self.project.id,
                    "seq": 1,
                    "id": str(event.id),
                    "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
                    "actor": "alice",
                    "data": json.loads(json.dumps(event.data)),
                }
            ],
        )
