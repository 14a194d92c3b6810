"""The base of every endpoint test: an authenticated client and the helpers to read answers."""

from datetime import datetime

from rest_framework.test import APITestCase
from rest_framework_simplejwt.tokens import AccessToken

from common.api.timestamps import rfc3339_utc
from common.tests.factories import UserFactory

# A Redis cache nobody answers: for tests of an outage.
CLOSED_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API writes it: UTC, RFC 3339, `Z`."""
    if value is None:
        return None
    return rfc3339_utc(value)


class APITest(APITestCase):
    """An APITestCase whose client carries a valid bearer token for `self.user`."""

    @classmethod
    def setUpTestData(cls):
        cls.user = UserFactory(username="alice", email="alice@example.com")

    def setUp(self):
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.user)}")
