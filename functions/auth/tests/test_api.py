"""The auth function: tokens and /auth/me/."""

from django.test import override_settings
from rest_framework.test import APITestCase
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from common.tests.factories import UserFactory


@override_settings(ROOT_URLCONF="functions.auth.urls")
class AuthTests(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.user = UserFactory(username="alice", email="alice@example.com")

    def test_the_right_password_gets_an_access_and_a_refresh_token(self):
        response = self.client.post(
            "/auth/token/", {"username": "alice", "password": "pass-word-1"}, format="json"
        )

        self.assertEqual(response.status_code, 200)
        self.assertEqual(set(response.json()), {"access", "refresh"})
        self.assertEqual(AccessToken(response.json()["access"])["user_id"], str(self.user.id))

    def test_wrong_credentials_are_401(self):
        for body in (
            {"username": "alice", "password": "nope"},
            {"username": "ghost", "password": "x"},
        ):
            with self.subTest(body=body):
                response = self.client.post("/auth/token/", body, format="json")
                self.assertEqual(response.status_code, 401)
                self.assertEqual(
                    response.json(),
                    {"detail": "No active account found with the given credentials"},
                )

    def test_missing_credentials_are_400(self):
        response = self.client.post("/auth/token/", {}, format="json")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(set(response.json()), {"username", "password"})

    def test_an_inactive_user_gets_no_token(self):
        UserFactory(username="gone", is_active=False)

        response = self.client.post(
            "/auth/token/", {"username": "gone", "password": "pass-word-1"}, format="json"
        )

        self.assertEqual(response.status_code, 401)

    def test_a_refresh_token_gets_a_new_access_and_refresh_token(self):
        refresh = RefreshToken.for_user(self.user)

        response = self.client.post(
            "/auth/token/refresh/", {"refresh": str(refresh)}, format="json"
        )

        self.assertEqual(response.status_code, 200)
        self.assertEqual(set(response.json()), {"access", "refresh"})
        self.assertEqual(AccessToken(response.json()["access"])["user_id"], str(self.user.id))

    def test_a_bad_refresh_token_is_401(self):
        for token in ("nonsense", str(AccessToken.for_user(self.user))):
            with self.subTest(token=token[:10]):
                response = self.client.post(
                    "/auth/token/refresh/", {"refresh": token}, format="json"
                )
                self.assertEqual(response.status_code, 401)

    def test_me_tells_who_the_caller_is(self):
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.user)}")

        response = self.client.get("/auth/me/")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"username": "alice", "email": "alice@example.com"})

    def test_me_without_a_token_or_with_a_refresh_token_is_401(self):
        self.assertEqual(self.client.get("/auth/me/").status_code, 401)
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(self.user)}")
        self.assertEqual(self.client.get("/auth/me/").status_code, 401)

    def test_token_endpoints_answer_405_to_get(self):
        self.assertEqual(self.client.get("/auth/token/").status_code, 405)
