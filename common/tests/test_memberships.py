"""The membership services: who may grant what, the events, ownership transfer, unassignment."""

from importlib import import_module

from django.apps import apps
from django.test import TestCase
from rest_framework.exceptions import PermissionDenied, ValidationError

from common.domain import memberships, services
from common.domain.models import Event, Membership, Project, Task
from common.tests.factories import MembershipFactory, ProjectFactory, TaskFactory, UserFactory


def roles(project: Project) -> dict[str, str]:
    return dict(project.memberships.values_list("user__username", "role"))


def events(project: Project) -> list[tuple[str, dict]]:
    return [(e.type, e.data) for e in Event.objects.filter(project_id=project.id).order_by("seq")]


class MembershipServiceTests(TestCase):
    def setUp(self):
        self.owner, self.admin, self.bea, self.newbie = (
            UserFactory(username=name) for name in ("olga", "adam", "bea", "newbie")
        )
        self.project = ProjectFactory(
            owner=self.owner, members=[(self.admin, "admin"), (self.bea, "member")]
        )

    def test_creating_a_project_makes_its_creator_the_owner_and_sends_only_project_created(self):
        project = services.project_create(actor=self.bea, name="Mine")

        self.assertEqual(roles(project), {"bea": "owner"})
        self.assertEqual([type for type, _ in events(project)], ["project.created"])

    def test_an_admin_adds_a_member_with_one_member_added(self):
        memberships.membership_add(actor=self.admin, project=self.project, user=self.newbie)

        self.assertEqual(roles(self.project)["newbie"], "member")
        self.assertEqual(
            events(self.project), [("member.added", {"username": "newbie", "role": "member"})]
        )

    def test_what_each_role_may_grant(self):
        allowed = {
            "admin": {"viewer": True, "member": True, "admin": False, "owner": False},
            "olga": {"viewer": True, "member": True, "admin": True, "owner": False},
            "bea": {"viewer": False, "member": False, "admin": False, "owner": False},
        }
        callers = {"admin": self.admin, "olga": self.owner, "bea": self.bea}
        for caller, grants in allowed.items():
            for role, may in grants.items():
                with self.subTest(caller=caller, role=role):
                    user = UserFactory()
                    add = memberships.membership_add
                    if may:
                        add(actor=callers[caller], project=self.project, user=user, role=role)
                        self.assertEqual(roles(self.project)[user.username], role)
                    else:
                        with self.assertRaises(PermissionDenied):
                            add(actor=callers[caller], project=self.project, user=user, role=role)
                        self.assertNotIn(user.username, roles(self.project))

    def test_adding_a_member_twice_is_a_400_on_username(self):
        with self.assertRaises(ValidationError) as raised:
            memberships.membership_add(actor=self.owner, project=self.project, user=self.bea)

        self.assertIn("username", raised.exception.detail)

    def test_an_admin_may_not_change_or_remove_an_admin(self):
        other = MembershipFactory(project=self.project, role="admin").user
        with self.assertRaises(PermissionDenied):
            memberships.membership_change(
                actor=self.admin, project=self.project, user=other, role="member"
            )
        with self.assertRaises(PermissionDenied):
            memberships.membership_remove(actor=self.admin, project=self.project, user=other)
        self.assertEqual(roles(self.project)[other.username], "admin")

    def test_demoting_to_viewer_unassigns_the_members_tasks_each_as_task_updated(self):
        tasks = TaskFactory.create_batch(2, project=self.project, assignee=self.bea)
        elsewhere = TaskFactory(project__owner=self.owner, project__members=[self.bea])
        elsewhere.assignee = self.bea
        elsewhere.save()

        memberships.membership_change(
            actor=self.admin, project=self.project, user=self.bea, role="viewer"
        )

        self.assertEqual(
            set(Task.objects.filter(assignee=self.bea).values_list("pk", flat=True)),
            {elsewhere.pk},
        )
        sent = events(self.project)
        self.assertEqual(
            [type for type, _ in sent], ["task.updated", "task.updated", "member.updated"]
        )
        self.assertEqual([data["id"] for _, data in sent[:2]], [task.id for task in tasks])
        self.assertEqual([data["assignee"] for _, data in sent[:2]], [None, None])
        self.assertEqual(sent[2][1], {"username": "bea", "role": "viewer"})

    def test_removing_a_member_unassigns_their_tasks_then_sends_member_removed(self):
        task = TaskFactory(project=self.project, assignee=self.bea)

        memberships.membership_remove(actor=self.admin, project=self.project, user=self.bea)

        task.refresh_from_db()
        self.assertIsNone(task.assignee)
        self.assertNotIn("bea", roles(self.project))
        self.assertEqual(
            [type for type, _ in events(self.project)], ["task.updated", "member.removed"]
        )
        self.assertEqual(events(self.project)[1][1], {"username": "bea", "role": "member"})

    def test_anyone_but_the_owner_may_leave(self):
        viewer = MembershipFactory(project=self.project, role="viewer").user
        memberships.membership_leave(actor=viewer, project=self.project)
        self.assertNotIn(viewer.username, roles(self.project))

        with self.assertRaises(ValidationError) as raised:
            memberships.membership_leave(actor=self.owner, project=self.project)
        self.assertEqual(set(raised.exception.detail), {"detail"})
        self.assertEqual(roles(self.project)["olga"], "owner")

    def test_a_member_may_not_remove_another_member(self):
        with self.assertRaises(PermissionDenied):
            memberships.membership_remove(actor=self.bea, project=self.project, user=self.admin)

    def test_the_owner_transfers_ownership_and_becomes_an_admin(self):
        memberships.membership_change(
            actor=self.owner, project=self.project, user=self.bea, role="owner"
        )

        self.project.refresh_from_db()
        self.assertEqual(self.project.owner, self.bea)
        self.assertEqual(roles(self.project), {"olga": "admin", "adam": "admin", "bea": "owner"})
        self.assertEqual(
            events(self.project),
            [
                ("member.updated", {"username": "olga", "role": "admin"}),
                ("member.updated", {"username": "bea", "role": "owner"}),
            ],
        )

    def test_only_the_owner_transfers_and_the_owner_is_never_demoted_directly(self):
        with self.assertRaises(PermissionDenied):
            memberships.membership_change(
                actor=self.admin, project=self.project, user=self.admin, role="owner"
            )
        with self.assertRaises(ValidationError):
            memberships.membership_change(
                actor=self.owner, project=self.project, user=self.owner, role="admin"
            )
        self.assertEqual(roles(self.project)["olga"], "owner")
        self.assertEqual(events(self.project), [])


class MembershipMigrationTests(TestCase):
    def test_projects_made_before_memberships_get_their_owner_as_owner_member(self):
        owned, orphan = ProjectFactory(), ProjectFactory(owner=None)
        Membership.objects.all().delete()

        migration = import_module("common.domain.migrations.0006_memberships")
        migration.owners_become_owner_members(apps, None)

        self.assertEqual(roles(owned), {owned.owner.username: "owner"})
        self.assertEqual(roles(orphan), {})
