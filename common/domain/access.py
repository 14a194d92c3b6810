"""Access: what a user may see and do in a project, decided by their membership alone.

The one place that answers both questions: `project_list_visible` / `task_list_visible` (the
rows every list and detail starts from) and `access_require` (may this user do this operation
in this project; a task's detail leaves its visibility to it: a non-member gets 404 from
either). Views declare the operation of each method (`ProjectAccess` reads it), and
the services check again under the project's row lock, which the membership services take too,
so a write and a membership change never interleave. Staff and superusers get no exception.
"""

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F, FilteredRelation, Q, QuerySet
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import BasePermission

from common.domain.models import Membership, Project, Task
from common.domain.statements import fetch_one

Role = Membership.Role

# Each role may do all that the roles before it may.
RANKS = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Operation(StrEnum):
    READ = "read"  # the project, its tasks, comments, summaries, members, activity
    WRITE_TASKS = "write_tasks"  # create, update, delete tasks; comment
    UPDATE_PROJECT = "update_project"
    MANAGE_MEMBERS = "manage_members"  # add and change members (which roles: `may_grant`)
    REMOVE_MEMBER = "remove_member"  # yourself, or whom you may grant (decided by the service)
    DELETE_PROJECT = "delete_project"
    MANAGE_WEBHOOKS = "manage_webhooks"  # every webhook path, reads included


LEAST_ROLE = {
    Operation.READ: Role.VIEWER,
    Operation.WRITE_TASKS: Role.MEMBER,
    Operation.UPDATE_PROJECT: Role.ADMIN,
    Operation.MANAGE_MEMBERS: Role.ADMIN,
    Operation.REMOVE_MEMBER: Role.VIEWER,
    Operation.DELETE_PROJECT: Role.OWNER,
    Operation.MANAGE_WEBHOOKS: Role.ADMIN,
}

# The operations a viewer may ask for and still be refused, by role or by the membership rules.
MAY_BE_FORBIDDEN = frozenset(
    operation
    for operation, role in LEAST_ROLE.items()
    if RANKS[role] > 0 or operation == Operation.REMOVE_MEMBER
)


def at_least(role: str | None, least: str) -> bool:
    return role is not None and RANKS[Role(role)] >= RANKS[Role(least)]


def may_grant(*, caller_role: str, role: str) -> bool:
    """Whether `caller_role` may give (or take away) `role`: admins viewers and members, the
    owner admins too. Ownership moves only by transfer (`membership_change`)."""
    if caller_role == Role.OWNER:
        return role != Role.OWNER
    return caller_role == Role.ADMIN and RANKS[Role(role)] <= RANKS[Role.MEMBER]


def project_list_visible(
    user: AbstractBaseUser | AnonymousUser, projects: QuerySet[Project] | None = None
) -> QuerySet[Project]:
    """The `projects` (default: all) `user` is a member of, each with the user's `role` in it."""
    projects = Project.objects.all() if projects is None else projects
    if not user.is_authenticated:
        return projects.none()
    caller = FilteredRelation("memberships", condition=Q(memberships__user_id=user.pk))
    return (
        projects.annotate(caller=caller)
        .filter(caller__isnull=False)
        .annotate(role=F("caller__role"))
    )


def task_list_visible(
    user: AbstractBaseUser | AnonymousUser, tasks: QuerySet[Task] | None = None
) -> QuerySet[Task]:
    """The `tasks` (default: all) of the projects `user` is a member of."""
    tasks = Task.objects.all() if tasks is None else tasks
    if not user.is_authenticated:
        return tasks.none()
    return tasks.filter(project_id__in=_project_ids(user))


def membership_roles(user: AbstractBaseUser) -> dict[int, str]:
    """Every project `user` is a member of, with the role: what the list cache keys pages by."""
    return dict(Membership.objects.filter(user_id=user.pk).values_list("project_id", "role"))


def role_of(*, user: AbstractBaseUser | None, project_id: int) -> str | None:
    """`user`'s role in the project, None when not a member."""
    if user is None or not user.is_authenticated:
        return None
    row = fetch_one(_role, project_id, user.pk)  # a statement of its own, after any lock taken
    return None if row is None else row[0]


def _role(project_id: int, user_id: int) -> QuerySet:
    return Membership.objects.filter(project_id=project_id, user_id=user_id).values_list("role")


def access_require(*, user: AbstractBaseUser | None, project_id: int, operation: Operation) -> str:
    """The caller's role, if it allows `operation` in the project.

    NotFound (404) for a non-member, as for an unknown project: existence is not revealed.
    PermissionDenied (403) for a member whose role does not allow it.
    """
    return role_allows(role_of(user=user, project_id=project_id), operation)


def role_allows(role: str | None, operation: Operation) -> str:
    """access_require for a role already read (None: not a member)."""
    if role is None:
        raise NotFound()
    if not at_least(role, LEAST_ROLE[operation]):
        raise PermissionDenied(f"Your role in this project ({role}) does not allow this.")
    return role


def assignee_allowed(*, user: AbstractBaseUser, project_id: int) -> bool:
    """Tasks go only to members with role member or above."""
    return at_least(role_of(user=user, project_id=project_id), Role.MEMBER)


def _project_ids(user: AbstractBaseUser) -> QuerySet:
    return Membership.objects.filter(user_id=user.pk).values("project_id")


class ProjectAccess(BasePermission):
    """A view's declared access: `operations` maps each method to an Operation.

    The project is the view's `access_project_id()` (a nested resource: known from the URL),
    else the object's (`project_id`, or the project itself). A view whose project comes from
    the request body (task create) leaves the check to the service.
    """

    def has_permission(self, request, view) -> bool:
        project_id = getattr(view, "access_project_id", lambda: None)()
        if project_id is not None:
            view.caller_role = self._require(request, view, project_id)
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        project_id = obj.pk if isinstance(obj, Project) else obj.project_id
        view.caller_role = self._require(request, view, project_id)
        return True

    @staticmethod
    def _require(request, view, project_id: int) -> str:
        operation = view.operations.get(request.method, Operation.READ)  # HEAD, OPTIONS: read
        return access_require(user=request.user, project_id=project_id, operation=operation)
