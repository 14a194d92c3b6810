"""Projects and members in the admin go through project_* and membership_*."""

from common.domain.models import Membership, Project, Task
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory
from functions.admin.tests.base import AdminTest, events, version

ADD = "/admin/common/project/add/"


def members(*rows: dict, initial: int = 0) -> dict:
    """The membership inline's part of the project form: `rows` of {"id", "user", "role"}."""
    data = {
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(initial),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data |= {f"memberships-{index}-{key}": value for key, value in row.items()}
    return data


class ProjectAdminTests(AdminTest):
    def change(self, project: Project, *rows: dict, new: tuple[dict, ...] = (), **fields):
        """Submit the project's change form: its member `rows`, then `new` ones."""
        data = {"name": project.name, "description": project.description, **fields}
        path = f"/admin/common/project/{project.pk}/change/"
        return self.submit(path, data | members(*rows, *new, initial=len(rows)))

    def row(self, membership: Membership, **changes) -> dict:
        row = {"id": membership.pk, "project": membership.project_id}
        return row | {"user": membership.user_id, "role": membership.role} | changes

    def test_adding_a_project_makes_its_owner_the_owner_member_through_the_services(self):
        alice = UserFactory(username="alice")
        before = version("projects")

        response = self.submit(ADD, {"name": "Admin made", "owner": alice.pk} | members())

        self.assertEqual(response.status_code, 302, response.content)
        project = Project.objects.get(name="Admin made")
        self.assertEqual(project.owner, alice)
        self.assertEqual(
            list(project.memberships.values_list("user__username", "role")), [("alice", "owner")]
        )
        self.assertEqual(
            events(project.pk),
            [("project.created", None), ("member.added", None), ("member.updated", None)],
        )
        self.assertGreater(version("projects"), before)

    def test_a_project_needs_an_owner_when_it_is_added(self):
        response = self.client.post(ADD, {"name": "Nobody's"} | members())

        self.assertIn("owner", response.context["adminform"].form.errors)
        self.assertFalse(Project.objects.exists())

    def test_changing_a_project_logs_project_updated_and_bumps_its_lists(self):
        project = ProjectFactory(name="Old")
        before = version("projects")

        response = self.change(project, self.row(project.memberships.get()), name="New")

        self.assertEqual(response.status_code, 302, response.content)
        project.refresh_from_db()
        self.assertEqual(project.name, "New")
        self.assertEqual(events(project.pk), [("project.updated", None)])
        self.assertGreater(version("projects"), before)

    def test_deleting_a_project_deletes_its_tasks_and_logs_project_deleted(self):
        task = TaskFactory()
        project = task.project
        before = version(f"tasks:project:{project.pk}")

        response = self.submit(f"/admin/common/project/{project.pk}/delete/", {"post": "yes"})

        self.assertEqual(response.status_code, 302, response.content)
        self.assertFalse(Project.objects.filter(pk=project.pk).exists())
        self.assertFalse(Task.objects.filter(pk=task.pk).exists())
        self.assertEqual(events(project.pk), [("project.deleted", None)])
        self.assertGreater(version(f"tasks:project:{project.pk}"), before)

    def test_the_bulk_delete_action_deletes_each_project_through_the_service(self):
        first, second = ProjectFactory(), ProjectFactory()
        TaskFactory(project=first)

        response = self.submit(
            "/admin/common/project/",
            {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
        )

        self.assertEqual(response.status_code, 302, response.content)
        self.assertFalse(Project.objects.exists() or Task.objects.exists())
        self.assertEqual(events(first.pk), [("project.deleted", None)])
        self.assertEqual(events(second.pk), [("project.deleted", None)])

    def test_adding_a_member_in_the_inline_logs_member_added(self):
        project, bob = ProjectFactory(), UserFactory(username="bob")
        owner = self.row(project.memberships.get())

        response = self.change(project, owner, new=({"user": bob.pk, "role": "viewer"},))

        self.assertEqual(response.status_code, 302, response.content)
        self.assertEqual(project.memberships.get(user=bob).role, "viewer")
        self.assertEqual(events(project.pk), [("member.added", None)])

    def test_giving_a_member_the_owner_role_transfers_ownership(self):
        bob = UserFactory(username="bob")
        project = ProjectFactory(members=[bob])
        old, new = project.memberships.get(role="owner"), project.memberships.get(user=bob)

        response = self.change(project, self.row(old), self.row(new, role="owner"))

        self.assertEqual(response.status_code, 302, response.content)
        project.refresh_from_db()
        self.assertEqual(project.owner, bob)
        old.refresh_from_db()
        self.assertEqual(old.role, "admin")
        self.assertEqual(events(project.pk), [("member.updated", None), ("member.updated", None)])

    def test_removing_a_member_unassigns_their_tasks_and_logs_it(self):
        bob = UserFactory(username="bob")
        project = ProjectFactory(members=[bob])
        task = TaskFactory(project=project, assignee=bob)
        owner = self.row(project.memberships.get(role="owner"))
        member = self.row(project.memberships.get(user=bob))

        response = self.change(project, owner, member | {"DELETE": "on"})

        self.assertEqual(response.status_code, 302, response.content)
        self.assertFalse(project.memberships.filter(user=bob).exists())
        task.refresh_from_db()
        self.assertIsNone(task.assignee)
        self.assertEqual(events(project.pk), [("task.updated", None), ("member.removed", None)])

    def test_removing_the_owner_is_refused_on_the_form_and_changes_nothing(self):
        project = ProjectFactory()
        owner = project.memberships.get()

        response = self.change(project, self.row(owner) | {"DELETE": "on"}, name="Renamed")

        self.assertRefused(response, None, "The owner cannot leave; transfer ownership first.")
        self.assertTrue(project.memberships.filter(pk=owner.pk, role="owner").exists())
        self.assertNotEqual(Project.objects.get(pk=project.pk).name, "Renamed")
        self.assertEqual(events(project.pk), [])  # the rename rolled back with the refusal

    def test_adding_one_user_twice_is_refused_and_changes_nothing(self):
        project = ProjectFactory()
        owner = project.memberships.get()

        bob = UserFactory(username="bob")
        again = {"user": bob.pk, "role": "member"}

        response = self.change(project, self.row(owner), new=(again, again))

        self.assertEqual(response.status_code, 200)
        self.assertEqual(project.memberships.count(), 1)
        self.assertEqual(events(project.pk), [])
