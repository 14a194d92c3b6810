"""The local-only endpoints (CONTRACT section 4): GET /local/outbox/, POST /local/jobs/{name}/."""

from datetime import datetime, timedelta

from django.test import override_settings
from django.utils import timezone
from moto import mock_aws
from rest_framework.test import APITestCase

from common.models import Reminder
from common.tests.factories import TaskFactory, UserFactory
from local import ses
from local.tests.ses_server import running_moto_server
from scheduled.email import send_email


@override_settings(ROOT_URLCONF="local.urls", EMAIL_BACKEND="django_ses.SESBackend")
class LocalEndpointsTests(APITestCase):
    def setUp(self):
        mock = mock_aws()
        mock.start()
        self.addCleanup(mock.stop)
        ses.verify_sender()

    def test_running_the_reminders_job_sends_the_email_the_outbox_then_shows(self):
        ann = UserFactory(email="ann@example.com")
        task = TaskFactory(
            title="Ship it", assignee=ann, due_date=timezone.now() + timedelta(hours=3)
        )

        response = self.client.post("/local/jobs/send_due_reminders/")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.json(), {"job": "send_due_reminders", "result": {"claimed": 1, "sent": 1}}
        )
        self.assertEqual(Reminder.objects.get().status, "sent")
        [email] = self.client.get("/local/outbox/").json()
        self.assertEqual(email["to"], "ann@example.com")
        self.assertIn("Ship it", email["subject"])
        self.assertIn(f"Task #{task.id}", email["body"])
        sent_at = datetime.fromisoformat(email["sent_at"])
        self.assertLess(abs(timezone.now() - sent_at), timedelta(minutes=1))

    def test_the_outbox_lists_the_newest_email_first(self):
        for n in range(3):
            send_email(to=f"user{n}@example.com", subject=f"Number {n}", body="Hello.\n")

        response = self.client.get("/local/outbox/")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            [email["subject"] for email in response.json()], ["Number 2", "Number 1", "Number 0"]
        )
        self.assertEqual(response.json()[0]["body"], "Hello.\n")

    def test_an_empty_outbox_is_an_empty_list(self):
        self.assertEqual(self.client.get("/local/outbox/").json(), [])

    def test_every_scheduled_job_can_be_run_and_says_what_it_did(self):
        for name in ("generate_project_summaries", "prune_events"):
            with self.subTest(name):
                response = self.client.post(f"/local/jobs/{name}/")
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response.json()["job"], name)
                self.assertIsInstance(response.json()["result"], dict)

    def test_an_unknown_job_or_an_internal_one_is_404_and_runs_nothing(self):
        for name in ("nope", "email_summaries", "run_job"):
            with self.subTest(name):
                response = self.client.post(f"/local/jobs/{name}/")
                self.assertEqual(response.status_code, 404)
                self.assertIn("send_due_reminders", response.json()["detail"])

    def test_jobs_are_run_with_post_only(self):
        response = self.client.get("/local/jobs/send_due_reminders/")
        self.assertEqual(response.status_code, 405)


class MotoServerOutboxTests(APITestCase):
    """With SES_ENDPOINT_URL (a moto server, as in compose), the outbox asks the server."""

    def setUp(self):
        endpoint = self.enterContext(running_moto_server())
        overrides = override_settings(
            ROOT_URLCONF="local.urls",
            EMAIL_BACKEND="django_ses.SESBackend",
            SES_ENDPOINT_URL=endpoint,
            AWS_SES_REGION_ENDPOINT_URL=endpoint,
        )
        overrides.enable()
        self.addCleanup(overrides.disable)
        ses.verify_sender()

    def test_the_outbox_shows_what_the_server_was_sent(self):
        send_email(to="bo@example.com", subject="Over HTTP", body="Sent to a moto server.\n")

        [email] = self.client.get("/local/outbox/").json()

        self.assertEqual((email["to"], email["subject"]), ("bo@example.com", "Over HTTP"))
