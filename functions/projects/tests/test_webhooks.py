"""Webhooks over HTTP: the secret shown once, filters, the delivery log, redeliver, roles, and
addresses refused on save (CONTRACT section 6). Nothing here is delivered: TestCase never
commits, so no after-commit step runs (scheduled/tests/test_webhooks.py delivers for real)."""

import base64
from unittest import mock

from django.test import override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from common.domain import services
from common.domain.models import Event, Webhook, WebhookDelivery
from common.tests.base import APITest, iso
from common.tests.factories import MembershipFactory, ProjectFactory, UserFactory

PUBLIC = "93.184.216.34"  # what the patched resolver answers for hooks.example.com
URL = "https://hooks.example.com/taskwire"


def fake_resolve(answers: dict[str, list[str]]):
    import ipaddress

    def resolve(host: str, port: int):
        return [ipaddress.ip_address(a) for a in answers.get(host, [host])]

    return mock.patch("common.domain.webhooks.resolve", side_effect=resolve)


@override_settings(ROOT_URLCONF="functions.projects.urls", WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
class WebhookEndpointTests(APITest):
    def setUp(self):
        super().setUp()
        self.project = ProjectFactory(owner=self.user)
        self.hooks = f"/projects/{self.project.id}/webhooks/"
        resolver = fake_resolve({"hooks.example.com": [PUBLIC]})
        self.resolve = resolver.start()
        self.addCleanup(resolver.stop)

    def create(self, **body):
        return self.client.post(self.hooks, {"url": URL, **body}, format="json")

    def test_create_answers_201_with_the_secret_shown_this_once(self):
        response = self.create(events=["task.created", "comment.created"])

        self.assertEqual(response.status_code, 201, response.content)
        webhook = Webhook.objects.get()
        body = response.json()
        self.assertEqual(
            body,
            {
                "id": webhook.id,
                "url": URL,
                "events": ["task.created", "comment.created"],
                "active": True,
                "created_at": iso(webhook.created_at),
                "secret": webhook.secret,
            },
        )
        self.assertTrue(body["secret"].startswith("whsec_"))
        self.assertEqual(len(base64.b64decode(body["secret"].removeprefix("whsec_"))), 24)
        listed = self.client.get(self.hooks).json()
        self.assertEqual(listed["count"], 1)
        self.assertNotIn("secret", listed["results"][0])
        self.assertNotIn(body["secret"], self.client.get(f"{self.hooks}{webhook.id}/").text)
        patched = self.client.patch(f"{self.hooks}{webhook.id}/", {"active": False}, format="json")
        self.assertNotIn("secret", patched.json())

    def test_events_default_to_everything_and_unknown_types_are_400(self):
        self.assertEqual(self.create().json()["events"], ["*"])

        for events in (["task.created", "task.exploded"], [], "task.created", [{"a": 1}]):
            with self.subTest(events=events):
                response = self.create(events=events)
                self.assertEqual(response.status_code, 400)
                self.assertIn("events", response.json())
        self.assertEqual(Webhook.objects.count(), 1)

    def test_patch_changes_url_events_and_active_and_delete_takes_the_log(self):
        webhook_id = self.create().json()["id"]
        detail = f"{self.hooks}{webhook_id}/"

        response = self.client.patch(
            detail, {"events": ["task.deleted"], "active": False}, format="json"
        )

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            (response.json()["events"], response.json()["active"]), (["task.deleted"], False)
        )
        self.assertEqual(self.client.put(detail, {"url": URL}, format="json").status_code, 405)
        event = Event.objects.create(
            project_id=self.project.id,
            seq=1,
            type="task.deleted",
            occurred_at=timezone.now(),
            data={},
        )
        WebhookDelivery.objects.create(
            webhook_id=webhook_id, event_id=event.id, due_at=timezone.now()
        )
        self.assertEqual(self.client.delete(detail).status_code, 204)
        self.assertFalse(Webhook.objects.exists())
        self.assertFalse(WebhookDelivery.objects.exists())
        self.assertEqual(self.client.get(detail).status_code, 404)

    def test_a_write_makes_a_pending_delivery_for_each_webhook_that_asks(self):
        everything = Webhook.objects.get(pk=self.create().json()["id"])
        deletes = Webhook.objects.get(pk=self.create(events=["task.deleted"]).json()["id"])
        Webhook.objects.get(pk=self.create(active=False).json()["id"])

        task = services.task_create(
            actor=self.user, project=self.project, title="t", due_date=timezone.now()
        )
        services.task_delete(actor=self.user, task=task)

        created, deleted = Event.objects.order_by("seq")
        self.assertEqual(
            sorted(WebhookDelivery.objects.values_list("webhook_id", "event_id", "status")),
            sorted(
                [
                    (everything.id, created.id, "pending"),
                    (everything.id, deleted.id, "pending"),
                    (deletes.id, deleted.id, "pending"),
                ]
            ),
        )

    def test_the_delivery_log_is_newest_first_and_redeliver_answers_202(self):
        webhook = Webhook.objects.get(pk=self.create().json()["id"])
        event = Event.objects.create(
            project_id=self.project.id,
            seq=1,
            type="task.created",
            occurred_at=timezone.now(),
            data={},
        )
        first = WebhookDelivery.objects.create(
            webhook=webhook,
            event_id=event.id,
            attempt=1,
            status="failed",
            response_status=500,
            duration_ms=12,
            error="HTTP 500 (not 2xx).",
            due_at=timezone.now(),
        )
        second = WebhookDelivery.objects.create(
            webhook=webhook,
            event_id=event.id,
            attempt=2,
            status="succeeded",
            response_status=204,
            duration_ms=8,
            due_at=timezone.now(),
        )
        log = f"{self.hooks}{webhook.id}/deliveries/"

        page = self.client.get(log).json()

        self.assertEqual(page["count"], 2)
        self.assertEqual(
            page["results"][1],
            {
                "id": first.id,
                "event": str(event.id),
                "attempt": 1,
                "status": "failed",
                "response_status": 500,
                "duration_ms": 12,
                "error": "HTTP 500 (not 2xx).",
                "created_at": iso(first.created_at),
            },
        )
        self.assertEqual(page["results"][0]["id"], second.id)

        response = self.client.post(f"{log}{first.id}/redeliver/")

        self.assertEqual(response.status_code, 202, response.content)
        again = WebhookDelivery.objects.get(pk=response.json()["id"])
        self.assertEqual((again.event_id, again.attempt, again.status), (event.id, 1, "pending"))
        self.assertEqual(self.client.get(log).json()["results"][0]["id"], again.id)

    def test_redeliver_of_an_event_no_longer_kept_is_410_and_of_an_inactive_webhook_400(self):
        webhook = Webhook.objects.get(pk=self.create().json()["id"])
        gone = WebhookDelivery.objects.create(
            webhook=webhook, event_id="00000000-0000-4000-8000-000000000000", due_at=timezone.now()
        )
        redeliver = f"{self.hooks}{webhook.id}/deliveries/{gone.id}/redeliver/"

        self.assertEqual(self.client.post(redeliver).status_code, 410)
        Webhook.objects.filter(pk=webhook.pk).update(active=False)
        self.assertEqual(self.client.post(redeliver).status_code, 400)
        self.assertEqual(WebhookDelivery.objects.count(), 1)
        other = Webhook.objects.create(project=ProjectFactory(owner=self.user), url=URL, secret="x")
        wrong = f"{self.hooks}{other.id}/deliveries/{gone.id}/redeliver/"
        self.assertEqual(self.client.post(wrong).status_code, 404)

    def test_only_admins_and_the_owner_manage_webhooks_and_a_non_member_gets_404(self):
        webhook_id = self.create().json()["id"]
        paths = [
            ("get", self.hooks),
            ("post", self.hooks),
            ("get", f"{self.hooks}{webhook_id}/"),
            ("patch", f"{self.hooks}{webhook_id}/"),
            ("delete", f"{self.hooks}{webhook_id}/"),
            ("get", f"{self.hooks}{webhook_id}/deliveries/"),
        ]
        stranger = UserFactory(username="stranger")
        expected = {"viewer": 403, "member": 403, None: 404}
        for role, code in expected.items():
            user = stranger
            if role:
                user = MembershipFactory(project=self.project, role=role).user
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
            for method, path in paths:
                with self.subTest(role=role, method=method, path=path):
                    response = getattr(self.client, method)(path, {"url": URL}, format="json")
                    self.assertEqual(response.status_code, code)
        self.client.credentials()
        self.assertEqual(self.client.get(self.hooks).status_code, 401)
        admin = MembershipFactory(project=self.project, role="admin").user
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(admin)}")
        self.assertEqual(self.create().status_code, 201)
        self.assertEqual(Webhook.objects.count(), 2)

    def test_a_url_must_be_http_or_https_with_a_public_host(self):
        refused = [
            "ftp://hooks.example.com/",
            "file:///etc/passwd",
            "gopher://hooks.example.com/",
            "https://",
            "https://user:pass@hooks.example.com/",
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://inside.example.com/",  # resolves to a private address
            "http://mixed.example.com/",  # one public address and one private
            "http://nowhere.example.com/",  # does not resolve
        ]
        answers = {
            "hooks.example.com": [PUBLIC],
            "inside.example.com": ["10.1.2.3"],
            "mixed.example.com": [PUBLIC, "192.168.0.10"],
        }

        def resolve(host, port):
            import ipaddress

            if host == "nowhere.example.com":
                raise OSError("Name or service not known")
            return [ipaddress.ip_address(a) for a in answers.get(host, [host])]

        self.resolve.side_effect = resolve
        for url in refused:
            with self.subTest(url=url):
                response = self.client.post(self.hooks, {"url": url}, format="json")
                self.assertEqual(response.status_code, 400, response.content)
                self.assertIn("url", response.json())
        self.assertFalse(Webhook.objects.exists())
        webhook_id = self.create().json()["id"]
        response = self.client.patch(
            f"{self.hooks}{webhook_id}/", {"url": "http://inside.example.com/"}, format="json"
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("private", response.json()["url"][0])
        self.assertEqual(Webhook.objects.get().url, URL)

    @override_settings(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True)
    def test_local_mode_allows_receivers_on_this_machine(self):
        response = self.client.post(
            self.hooks, {"url": "http://127.0.0.1:9999/hook"}, format="json"
        )

        self.assertEqual(response.status_code, 201)
