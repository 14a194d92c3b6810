"""The base of every endpoint test: an authenticated client and the helpers to read answers."""

from datetime import UTC, datetime

from rest_framework.test import APITestCase
from rest_framework_simplejwt.tokens import AccessToken

from common.tests.factories import UserFactory


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API writes it: UTC, RFC 3339, `Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


class APITest(APITestCase):
    """An APITestCase whose client carries a valid bearer token for `self.user`."""

    @classmethod
    def setUpTestData(cls):
        cls.user = UserFactory(username="alice", email="alice@example.com")

    def setUp(self):
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.user)}")
