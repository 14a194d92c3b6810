"""Liveness and readiness of every function."""

from unittest import mock

from django.conf import settings
from django.db.utils import ConnectionHandler
from django.test import TestCase, override_settings

from common.tests.base import CLOSED_CACHE


@override_settings(ROOT_URLCONF="common.api.urls")
class HealthTests(TestCase):
    def test_healthz_answers_ok_without_auth_or_queries(self):
        with self.assertNumQueries(0):
            response = self.client.get("/healthz")

        self.assertEqual((response.status_code, response.json()), (200, {"status": "ok"}))

    def test_readyz_answers_ok_when_the_database_answers(self):
        response = self.client.get("/readyz")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.json(), {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}
        )

    def test_readyz_answers_503_naming_the_database_when_it_is_down(self):
        closed_port = {**settings.DATABASES["default"], "PORT": "1", "OPTIONS": {}}
        unreachable = ConnectionHandler({"default": closed_port})["default"]

        with (
            mock.patch("common.api.health.connection", unreachable),
            self.assertLogs("common.api.health", "WARNING"),
        ):
            response = self.client.get("/readyz")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(
            response.json(),
            {
                "status": "unavailable",
                "failed": ["database"],
                "checks": {"database": "down", "cache": "ok"},
            },
        )

    @override_settings(CACHES=CLOSED_CACHE)
    def test_readyz_answers_503_naming_the_cache_when_redis_is_down(self):
        with self.assertLogs("common.api.health", "WARNING"):
            response = self.client.get("/readyz")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(
            response.json(),
            {
                "status": "unavailable",
                "failed": ["cache"],
                "checks": {"database": "ok", "cache": "down"},
            },
        )

    def test_health_endpoints_refuse_other_methods(self):
        self.assertEqual(self.client.post("/healthz").status_code, 405)
        self.assertEqual(self.client.post("/readyz").status_code, 405)

    def test_an_unknown_path_is_a_json_404(self):
        response = self.client.get("/nowhere/")

        self.assertEqual((response.status_code, response.json()), (404, {"detail": "Not found."}))
