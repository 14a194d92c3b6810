"""The base of the admin's tests: Django's test client with a staff user signed in."""

from django.test import TestCase, override_settings

from common.domain.models import Event
from common.infra.cache.keys import version_name
from common.infra.cache.store import store
from common.tests.factories import UserFactory


def version(name: str) -> int:
    """A list-cache version as Redis holds it (0 before its first bump)."""
    [raw] = store().get_many([version_name(name)])
    return int(raw or 0)


def events(project_id: int) -> list[tuple[str, str | None]]:
    """The project's logged events, oldest first, as (type, actor)."""
    rows = Event.objects.filter(project_id=project_id).order_by("seq")
    return list(rows.values_list("type", "actor"))


@override_settings(ROOT_URLCONF="functions.admin.urls")
class AdminTest(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.staff = UserFactory(username="ops", is_staff=True, is_superuser=True)

    def setUp(self):
        self.client.force_login(self.staff)

    def submit(self, path: str, data: dict):
        """POST the form, running its after-commit work (events, cache bumps) as a commit would."""
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.post(path, data)

    def assertRefused(self, response, field: str | None, message: str):
        """The form came back with `message` on `field` (None: the form's own errors)."""
        self.assertEqual(response.status_code, 200)
        form = response.context["adminform"].form
        errors = form.non_field_errors() if field is None else form.errors.get(field, [])
        self.assertIn(message, " ".join(errors))
