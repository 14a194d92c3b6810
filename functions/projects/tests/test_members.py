"""A project's members over HTTP, and what membership shows in lists, counts and bodies."""

from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from common.domain.models import Event
from common.tests.base import APITest, iso
from common.tests.factories import MembershipFactory, ProjectFactory, TaskFactory, UserFactory


@override_settings(ROOT_URLCONF="functions.projects.urls")
class MemberEndpointTests(APITest):
    def setUp(self):
        super().setUp()
        self.project = ProjectFactory(owner=self.user)
        self.zed = MembershipFactory(project=self.project, user=UserFactory(username="zed"))
        self.bob = MembershipFactory(
            project=self.project, user=UserFactory(username="bob"), role="viewer"
        )
        self.members = f"/projects/{self.project.id}/members/"

    def test_the_members_are_a_page_by_username(self):
        with self.assertNumQueries(4):  # the caller, the role, the count, the page
            response = self.client.get(self.members)

        owner = self.project.memberships.get(user=self.user)
        self.assertEqual(
            response.json(),
            {
                "count": 3,
                "next": None,
                "previous": None,
                "results": [
                    {"username": "alice", "role": "owner", "added_at": iso(owner.added_at)},
                    {"username": "bob", "role": "viewer", "added_at": iso(self.bob.added_at)},
                    {"username": "zed", "role": "member", "added_at": iso(self.zed.added_at)},
                ],
            },
        )

    def test_adding_a_member_answers_201_with_role_member_by_default(self):
        UserFactory(username="cy")

        response = self.client.post(self.members, {"username": "cy"}, format="json")

        self.assertEqual(response.status_code, 201)
        added = self.project.memberships.get(user__username="cy")
        self.assertEqual(
            response.json(), {"username": "cy", "role": "member", "added_at": iso(added.added_at)}
        )

    def test_an_unknown_user_or_a_member_already_is_a_400_on_username(self):
        for username in ("nobody", "zed"):
            with self.subTest(username):
                response = self.client.post(self.members, {"username": username}, format="json")
                self.assertEqual(response.status_code, 400)
                self.assertEqual(list(response.json()), ["username"])

    def test_an_admin_granting_admin_is_a_403(self):
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.zed.user)}")
        self.zed.role = "admin"
        self.zed.save()
        UserFactory(username="cy")

        response = self.client.post(
            self.members, {"username": "cy", "role": "admin"}, format="json"
        )

        self.assertEqual(response.status_code, 403)
        self.assertFalse(self.project.memberships.filter(user__username="cy").exists())

    def test_patching_owner_transfers_ownership(self):
        response = self.client.patch(f"{self.members}zed/", {"role": "owner"}, format="json")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["role"], "owner")
        project = self.client.get(f"/projects/{self.project.id}/").json()
        self.assertEqual((project["owner"], project["role"]), ("zed", "admin"))

    def test_the_owner_leaving_is_a_400_with_a_detail(self):
        response = self.client.delete(f"{self.members}alice/")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(list(response.json()), ["detail"])

    def test_a_viewer_may_leave(self):
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.bob.user)}")

        self.assertEqual(self.client.delete(f"{self.members}bob/").status_code, 204)
        self.assertEqual(self.client.get(self.members).status_code, 404)
        self.assertEqual(
            Event.objects.get(project_id=self.project.id).data,
            {"username": "bob", "role": "viewer"},
        )

    def test_someone_who_is_not_a_member_is_a_404(self):
        self.assertEqual(self.client.get(f"{self.members}nobody/").status_code, 404)


@override_settings(ROOT_URLCONF="local.urls")
class ListsPerUserTests(APITest):
    """Two users in different projects read the same URLs, alternately (the cache between)."""

    def setUp(self):
        super().setUp()
        self.bob = UserFactory(username="bob")
        self.shared = ProjectFactory(owner=self.user, members=[(self.bob, "viewer")])
        self.mine = ProjectFactory(owner=self.user)
        self.his = ProjectFactory(owner=self.bob)
        for project in (self.shared, self.mine, self.mine, self.his):
            TaskFactory(project=project)

    def as_user(self, user, path: str) -> dict:
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        response = self.client.get(path)
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()

    def listed(self, user, path: str) -> tuple[int, list[int]]:
        page = self.as_user(user, path)
        return page["count"], [row.get("project", row["id"]) for row in page["results"]]

    def test_each_user_lists_and_counts_only_their_projects_and_tasks(self):
        for _ in range(2):  # the second round comes from the cache
            self.assertEqual(
                self.listed(self.user, "/projects/"), (2, [self.shared.id, self.mine.id])
            )
            self.assertEqual(
                self.listed(self.bob, "/projects/"), (2, [self.shared.id, self.his.id])
            )
            self.assertEqual(
                self.listed(self.user, "/tasks/?status=pending"),
                (3, [self.shared.id, self.mine.id, self.mine.id]),
            )
            self.assertEqual(
                self.listed(self.bob, "/tasks/?status=pending"), (2, [self.shared.id, self.his.id])
            )

    def test_each_user_reads_their_own_role(self):
        roles = {p["id"]: p["role"] for p in self.as_user(self.bob, "/projects/")["results"]}

        self.assertEqual(roles, {self.shared.id: "viewer", self.his.id: "owner"})

    def test_a_project_filter_the_caller_cannot_see_is_a_400_as_for_an_unknown_one(self):
        response = self.client.get(f"/tasks/?project={self.his.id}")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), self.client.get("/tasks/?project=999999").json())

    def test_a_removal_shows_in_the_removed_users_next_read(self):
        self.assertEqual(self.listed(self.bob, "/projects/")[0], 2)
        self.assertEqual(self.listed(self.bob, f"/tasks/?project={self.shared.id}")[0], 1)

        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.user)}")
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.delete(f"/projects/{self.shared.id}/members/bob/")
        self.assertEqual(response.status_code, 204)

        self.assertEqual(self.listed(self.bob, "/projects/"), (1, [self.his.id]))
        self.assertEqual(self.listed(self.bob, "/tasks/")[0], 1)
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.bob)}")
        self.assertEqual(self.client.get(f"/tasks/?project={self.shared.id}").status_code, 400)

    def test_staff_and_superusers_see_only_their_own_projects(self):
        self.bob.is_staff = self.bob.is_superuser = True
        self.bob.save()

        self.assertEqual(self.listed(self.bob, "/projects/")[0], 2)
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.bob)}")
        self.assertEqual(self.client.get(f"/projects/{self.mine.id}/").status_code, 404)
