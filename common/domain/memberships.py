"""Memberships: who is in a project, with which role. Each change is one transaction, one event.

Every service takes the project's row lock first, as the task writes do (common.domain.services), so
a write by a member being removed either commits before the removal or is refused after it.
Who may grant what is common.domain.access's `may_grant`; `actor=None` is the system, which may do
anything the rules allow (exactly one owner, who cannot leave).
"""

from django.contrib.auth.models import User  # Django's own (AUTH_USER_MODEL is not swapped)
from django.db import transaction
from rest_framework.exceptions import PermissionDenied, ValidationError

from common.api.serializers import TaskSerializer
from common.domain.access import Operation, Role, access_require, may_grant
from common.domain.events import EventType, publish
from common.domain.models import Membership, Project, Task

Actor = User | None


@transaction.atomic
def membership_add(
    *, actor: Actor, project: Project, user: User, role: str = Role.MEMBER
) -> Membership:
    project = _locked_project(project.pk)
    _require_grant(actor, project, role)
    if Membership.objects.filter(project=project, user=user).exists():
        raise ValidationError({"username": ["This user is already a member of the project."]})
    membership = Membership.objects.create(project=project, user=user, role=role)
    _publish(EventType.MEMBER_ADDED, membership, actor)
    return membership


@transaction.atomic
def membership_change(*, actor: Actor, project: Project, user: User, role: str) -> Membership:
    """Give the member `role`. `owner` transfers ownership: the old owner becomes an admin."""
    project = _locked_project(project.pk)
    membership = _locked_membership(project, user)
    if role == Role.OWNER:
        return _transfer(actor, project, membership)
    if membership.role == Role.OWNER:
        raise ValidationError({"detail": "The owner's role changes only by a transfer."})
    _require_grant(actor, project, membership.role, role)
    if role == membership.role:
        return membership  # nothing changes, nothing to announce
    if role == Role.VIEWER:
        _unassign_tasks(actor, project, user)
    membership.role = role
    membership.save(update_fields=["role"])
    _publish(EventType.MEMBER_UPDATED, membership, actor)
    return membership


@transaction.atomic
def membership_remove(*, actor: Actor, project: Project, user: User) -> None:
    """Remove the member (their tasks in the project are unassigned). Leaving is always
    allowed, except for the owner, who transfers ownership first."""
    project = _locked_project(project.pk)
    membership = _locked_membership(project, user)
    if membership.role == Role.OWNER and (actor is None or actor.pk == user.pk):
        raise ValidationError({"detail": "The owner cannot leave; transfer ownership first."})
    if actor is None or actor.pk != user.pk:
        _require_grant(actor, project, membership.role)
    _unassign_tasks(actor, project, user)
    membership.delete()
    _publish(EventType.MEMBER_REMOVED, membership, actor)


def membership_leave(*, actor: User, project: Project) -> None:
    membership_remove(actor=actor, project=project, user=actor)


def _transfer(actor: Actor, project: Project, membership: Membership) -> Membership:
    if actor is not None:
        caller_role = access_require(
            user=actor, project_id=project.pk, operation=Operation.MANAGE_MEMBERS
        )
        if caller_role != Role.OWNER:
            raise PermissionDenied("Only the owner transfers ownership.")
    if membership.role == Role.OWNER:
        return membership
    owners = Membership.objects.select_for_update().select_related("user")
    old = owners.filter(project=project, role=Role.OWNER).first()
    if old is not None:  # first, so the project never has two owners
        old.role = Role.ADMIN
        old.save(update_fields=["role"])
    membership.role = Role.OWNER
    membership.save(update_fields=["role"])
    project.owner = membership.user
    project.save(update_fields=["owner", "updated_at"])
    if old is not None:
        _publish(EventType.MEMBER_UPDATED, old, actor)
    _publish(EventType.MEMBER_UPDATED, membership, actor)
    return membership


def _require_grant(actor: Actor, project: Project, *roles: str) -> None:
    """403 unless `actor` may give (or take away) each of `roles` in the project."""
    if actor is None:
        return
    caller_role = access_require(user=actor, project_id=project.pk, operation=Operation.READ)
    if not all(may_grant(caller_role=caller_role, role=role) for role in roles):
        raise PermissionDenied(f"Your role in this project ({caller_role}) may not grant this.")


def _unassign_tasks(actor: Actor, project: Project, user: User) -> None:
    """The user's tasks in the project lose their assignee, each announced as `task.updated`."""
    tasks = Task.objects.select_for_update(of=("self",)).filter(project=project, assignee=user)
    for task in tasks.order_by("pk"):
        task.assignee = None
        task.save(update_fields=["assignee", "updated_at"])
        data = TaskSerializer(task).data
        publish(type=EventType.TASK_UPDATED, project_id=project.pk, data=data, actor=actor)


def _locked_project(project_id: int) -> Project:
    return Project.objects.select_for_update(no_key=True, of=("self",)).get(pk=project_id)


def _locked_membership(project: Project, user: User) -> Membership:
    """The membership under its lock; Membership.DoesNotExist (404) when the user is not in."""
    memberships = Membership.objects.select_for_update(of=("self",)).select_related("user")
    return memberships.get(project=project, user_id=user.pk)


def _publish(type: EventType, membership: Membership, actor: Actor) -> None:
    data = {"username": membership.user.get_username(), "role": membership.role}
    publish(
        type=type,
        project_id=membership.project_id,
        data=data,
        actor=actor,
        readers_changed=(membership.user_id,),
    )
