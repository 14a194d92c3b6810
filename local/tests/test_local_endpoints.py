"""The local-only endpoints (CONTRACT section 4): GET /local/outbox/, POST /local/jobs/{name}/."""

from datetime import datetime, timedelta

import httpx
from asgiref.sync import async_to_sync
from django.test import SimpleTestCase, override_settings
from django.utils import timezone
from moto import mock_aws
from rest_framework.test import APITestCase

from common.domain.models import Reminder
from common.tests.factories import TaskFactory, UserFactory
from local import ses
from local.tests.ses_server import running_moto_server
from scheduled.email import send_email


@override_settings(ROOT_URLCONF="local.urls", EMAIL_BACKEND="scheduled.email.SESBackend")
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

    def test_a_host_outside_allowed_hosts_is_refused_dns_rebinding(self):
        for method, path in (("get", "/local/outbox/"), ("post", "/local/jobs/prune_events/")):
            with self.subTest(method=method), self.assertNoLogs("scheduled.jobs", "INFO"):
                response = getattr(self.client, method)(path, HTTP_HOST="rebound.evil.example")
                self.assertEqual(response.status_code, 400)
                self.assertEqual(
                    response.json(), {"detail": "The Host header is not one of ALLOWED_HOSTS."}
                )

    def test_a_post_from_another_sites_page_is_refused(self):
        for headers in (
            {"HTTP_ORIGIN": "http://evil.example"},
            {"HTTP_ORIGIN": "null"},
            {"HTTP_SEC_FETCH_SITE": "cross-site"},
            {"HTTP_SEC_FETCH_SITE": "same-site", "HTTP_ORIGIN": "http://a.testserver"},
        ):
            with self.subTest(headers=headers), self.assertNoLogs("scheduled.jobs", "INFO"):
                response = self.client.post("/local/jobs/prune_events/", **headers)
                self.assertEqual(response.status_code, 403)
                self.assertEqual(
                    response.json(), {"detail": "Cross-origin requests to /local/ are refused."}
                )

    def test_a_post_from_the_same_origin_or_no_browser_runs_the_job(self):
        for headers in (
            {},
            {"HTTP_ORIGIN": "http://testserver", "HTTP_SEC_FETCH_SITE": "same-origin"},
        ):
            with self.subTest(headers=headers):
                response = self.client.post("/local/jobs/prune_events/", **headers)
                self.assertEqual(response.status_code, 200)


class MotoServerOutboxTests(APITestCase):
    """With SES_ENDPOINT_URL (a moto server, as in compose), the outbox asks the server."""

    def setUp(self):
        endpoint = self.enterContext(running_moto_server())
        overrides = override_settings(
            ROOT_URLCONF="local.urls",
            EMAIL_BACKEND="scheduled.email.SESBackend",
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


class EmbeddedRunStaticAndDocsTests(SimpleTestCase):
    """The local run's static files and docs answer JSON 4xx for what they cannot serve."""

    def setUp(self):
        from common.infra.asgi import function_application
        from common.infra.static import StaticFiles

        app = StaticFiles(function_application("local.urls"))
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    def _request(self, method: str, path: str) -> httpx.Response:
        return async_to_sync(self.client.request)(method, path)

    def test_a_static_path_that_climbs_out_is_a_json_404(self):
        for path in (
            "/static/%2e%2e/%2e%2e/etc/passwd",
            "/static/..%2f..%2fetc/passwd",
            "/static/no-such-file.css",
        ):
            with self.subTest(path=path):
                response = self._request("GET", path)
                self.assertEqual(response.status_code, 404)
                self.assertEqual(response.json(), {"detail": "Not found."})

    def test_options_on_the_docs_page_is_a_405_not_a_500(self):
        response = self._request("OPTIONS", "/docs/")

        self.assertEqual(response.status_code, 405)
        self.assertEqual(response.headers["content-type"], "application/json")
        self.assertEqual(self._request("GET", "/docs/").status_code, 200)
