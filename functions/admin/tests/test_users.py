"""Users in the admin: Django's own forms; only staff sign in; deactivation acts at once."""

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from common.tests.factories import UserFactory
from functions.admin.tests.base import AdminTest

User = get_user_model()


class UserAdminTests(AdminTest):
    def test_a_user_is_created_through_djangos_own_form(self):
        response = self.submit(
            "/admin/auth/user/add/",
            {
                "username": "carol",
                "usable_password": "true",
                "password1": "a-long-pass-word-1",
                "password2": "a-long-pass-word-1",
            },
        )

        self.assertEqual(response.status_code, 302, response.content)
        self.assertTrue(User.objects.get(username="carol").check_password("a-long-pass-word-1"))

    def test_a_password_is_reset_through_djangos_own_form(self):
        user = UserFactory(username="dave")

        response = self.submit(
            f"/admin/auth/user/{user.pk}/password/",
            {
                "usable_password": "true",
                "password1": "new-pass-word-2",
                "password2": "new-pass-word-2",
            },
        )

        self.assertEqual(response.status_code, 302, response.content)
        user.refresh_from_db()
        self.assertTrue(user.check_password("new-pass-word-2"))

    def test_deleting_a_user_is_not_offered(self):
        user = UserFactory()

        response = self.client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})

        self.assertEqual(response.status_code, 403)
        self.assertTrue(User.objects.filter(pk=user.pk).exists())

    def test_only_active_staff_sign_in(self):
        UserFactory(username="plain")
        UserFactory(username="former", is_staff=True, is_active=False)
        UserFactory(username="staffer", is_staff=True)
        client = Client()

        for username in ("plain", "former", "staffer"):
            client.logout()
            client.post(
                "/admin/login/",
                {"username": username, "password": "pass-word-1", "next": "/admin/"},
            )
            index = client.get("/admin/")
            with self.subTest(username):
                self.assertEqual(index.status_code, 200 if username == "staffer" else 302)


def change_form(user) -> dict:
    """The user's change form as the admin shows it, unchanged."""
    return {
        "username": user.username,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "date_joined_0": user.date_joined.date().isoformat(),
        "date_joined_1": user.date_joined.time().strftime("%H:%M:%S"),
    }


@pytest.mark.django_db(transaction=True)
def test_deactivating_a_user_in_the_admin_takes_them_off_the_cached_hit_path_at_once(settings):
    from functions.tasks.handler import application

    settings.ALLOWED_HOSTS = ["testserver"]
    settings.ROOT_URLCONF = "functions.admin.urls"
    user = UserFactory(username="erin")
    admin = Client()
    admin.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))
    headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}

    async def tasks() -> httpx.Response:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/tasks/", headers=headers)

    first, second = async_to_sync(tasks)(), async_to_sync(tasks)()
    form = change_form(user) | {"is_active": ""}
    saved = admin.post(f"/admin/auth/user/{user.pk}/change/", form)
    after = async_to_sync(tasks)()

    assert saved.status_code == 302, saved.content
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert after.status_code == 401
