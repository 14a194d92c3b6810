"""Writes: every change to users, projects, tasks and comments goes through one of these functions.

Each runs in one transaction and ends with one `publish`, so a write and its event happen whole
or not at all. `actor` is the user making the change (None for the system).

The instance a view passes in may be stale by the time the write runs: each service re-reads
what it changes under row locks, taken projects first (in id order), then the task, so
concurrent writes wait for each other instead of deadlocking. A row deleted meanwhile raises
its model's DoesNotExist, which answers 404. `if_match` (the tags of a request's If-Match) is
compared with the row's representation under that same lock: a stale tag raises
PreconditionFailed (412) before anything changes.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import User  # Django's own (AUTH_USER_MODEL is not swapped)
from django.db import connection, transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.serializers import Serializer

from common.api.conditional import require_current
from common.api.serializers import CommentSerializer, ProjectSerializer, TaskSerializer
from common.domain import effects
from common.domain.access import (
    Operation,
    Role,
    access_require,
    assignee_allowed,
    role_allows,
    role_of,
)
from common.domain.events import EventType, publish
from common.domain.models import Comment, Membership, Project, Task
from common.domain.statements import compiled

Actor = User | None
# The tags of a write's If-Match (common.api.conditional), checked under the row lock; None: none.
Expected = list[str] | None


@transaction.atomic
def user_update(*, user: User, **changes: Any) -> User:
    """Change a user's fields. Every list shows usernames; a deactivated user, or one whose
    password changed, is refused at once, the cache's hit path in front of Django included
    (its `save()` ends their tokens: common.domain.revocation)."""
    for field, value in changes.items():
        setattr(user, field, value)
    user.save(update_fields=list(changes))
    effects.on_commit(versions=["users"] if "username" in changes else [])
    return user


def user_deactivate(*, user: User) -> User:
    return user_update(user=user, is_active=False)


@transaction.atomic
def user_delete(*, user: User) -> None:
    """Delete a user: their projects lose their owner and their tasks their assignee."""
    user.delete()  # its tokens end with it (common.domain.revocation)
    effects.on_commit(versions=["users"])


@transaction.atomic
def project_create(*, actor: Actor, name: str, description: str = "") -> Project:
    project = Project.objects.create(name=name, description=description, owner=actor)
    if actor is not None:  # its creator is its owner (the event implies the membership)
        Membership.objects.create(project=project, user=actor, role=Role.OWNER)
    _publish_project(EventType.PROJECT_CREATED, project, actor)
    return project


@transaction.atomic
def project_update(
    *, actor: Actor, project: Project, if_match: Expected = None, **changes: Any
) -> Project:
    project = _locked_project(project.pk)
    role = _require(actor, project.pk, Operation.UPDATE_PROJECT)
    _require_current_project(if_match, project, role)
    for field, value in changes.items():
        setattr(project, field, value)
    project.save(update_fields=[*changes, "updated_at"])  # never event_seq: publish owns it
    _publish_project(EventType.PROJECT_UPDATED, project, actor)
    return project


@transaction.atomic
def project_delete(*, actor: Actor, project: Project, if_match: Expected = None) -> None:
    """Delete the project with its tasks and comments: one `project.deleted` covers them all."""
    project = _locked_project(project.pk)
    role = _require(actor, project.pk, Operation.DELETE_PROJECT)
    _require_current_project(if_match, project, role)
    publish(
        type=EventType.PROJECT_DELETED, project_id=project.id, data={"id": project.id}, actor=actor
    )
    project.delete()


def task_create(
    *,
    actor: Actor,
    project: Project,
    title: str,
    due_date: datetime,
    description: str = "",
    status: str = Task.Status.PENDING,
    assignee: User | None = None,
) -> Task:
    """A new task in `project`, if the actor's role there allows it (403). A project from
    project_for_write (in this transaction) is neither locked nor its role read again."""
    locked = _project_locked_here(project)
    with transaction.atomic(savepoint=not locked):  # as _write_transaction
        if not locked:
            _lock_projects(project.pk)
        if actor is not None:
            role = project.caller_role if locked else role_of(user=actor, project_id=project.pk)  # type: ignore[attr-defined]
            role_allows(role, Operation.WRITE_TASKS)
        return _task_create(actor, project, title, due_date, description, status, assignee)


def _task_create(
    actor: Actor,
    project: Project,
    title: str,
    due_date: datetime,
    description: str,
    status: str,
    assignee: User | None,
) -> Task:
    _require_assignee(assignee, project.pk)
    task = Task(
        project=project,
        title=title,
        description=description,
        status=status,
        assignee=assignee,
        due_date=due_date,
    )
    _track_completion(task, was_completed=False)
    task.save()
    _publish_task(EventType.TASK_CREATED, task, actor)
    return task


def task_update(*, actor: Actor, task: Task, if_match: Expected = None, **changes: Any) -> Task:
    """Apply `changes` to the task. A task moved to another project is announced there."""
    with _write_transaction(task):
        return _task_update(actor, task, if_match, changes)


def _task_update(actor: Actor, task: Task, if_match: Expected, changes: dict[str, Any]) -> Task:
    moved_to = changes.get("project")
    # A move needs the role in both projects.
    task = _locked_task(task, *([moved_to.pk] if moved_to else []), actor=actor)
    project_before = task.project_id
    project_id = moved_to.pk if moved_to else project_before
    _require_current_task(if_match, task)
    assignee = changes.get("assignee", task.assignee)
    if assignee != task.assignee or project_id != project_before:
        _require_assignee(assignee, project_id)
    was_completed = task.status == Task.Status.COMPLETED
    if "due_date" in changes and changes["due_date"] != task.due_date:
        task.reminder_sent_at = None  # a new due date deserves its own reminder
    for field, value in changes.items():
        setattr(task, field, value)
    _track_completion(task, was_completed=was_completed)
    # Only what a write can change (comment_count is comment_create's, under the same lock).
    task.save(update_fields=[*changes, "reminder_sent_at", "completed_at", "updated_at"])
    _publish_task(EventType.TASK_UPDATED, task, actor, moved_from=project_before)
    return task


def task_delete(*, actor: Actor, task: Task, if_match: Expected = None) -> None:
    with _write_transaction(task):
        task = _locked_task(task, actor=actor)
        _require_current_task(if_match, task)
        data = {"id": task.id, "project": task.project_id}
        task.delete()
        publish(type=EventType.TASK_DELETED, project_id=data["project"], data=data, actor=actor)


def _write_transaction(task: Task) -> transaction.Atomic:
    """The write's transaction: the view's own, when it read the task with task_for_write (no
    savepoint: an error rolls the view's transaction back whole), else a new one."""
    return transaction.atomic(savepoint=not _locked_here(task))


def _locked_here(task: Task) -> bool:
    return hasattr(task, "locked_projects") and connection.in_atomic_block


# No savepoint of its own: the job calls it inside the reminder's transaction, which any error
# here dooms anyway (two queries fewer per email).
@transaction.atomic(savepoint=False)
def task_mark_reminded(*, task: Task, due_date: datetime, sent_at: datetime) -> Task | None:
    """Record that the reminder for the task's `due_date` went out, announced as `task.updated`.

    None, and nothing changes, when the task has another due date by now (it was re-armed).
    Under its project's lock, the task is locked and updated in one statement (the job's
    reminders cost CPU per email: no read, then save(), of their own).
    """
    _lock_projects(task.project_id)
    table = connection.ops.quote_name(Task._meta.db_table)
    sql = f"UPDATE {table} SET reminder_sent_at = %s WHERE id = %s AND due_date = %s RETURNING *"  # noqa: S608 (the model's table name)
    adapt = connection.ops.adapt_datetimefield_value
    marked = next(iter(Task.objects.raw(sql, [adapt(sent_at), task.pk, adapt(due_date)])), None)
    if marked is None:
        return None
    if marked.project_id != task.project_id:  # moved since the caller read it: lock that one too
        _lock_projects(marked.project_id)
    if marked.assignee_id == task.assignee_id and Task.assignee.is_cached(task):
        marked.assignee = task.assignee  # the same user: no query for the representation
    _publish_task(EventType.TASK_UPDATED, marked, None)
    return marked


@transaction.atomic
def comment_create(*, actor: Actor, task: Task, author: str, content: str) -> Comment:
    task = _locked_task(task, actor=actor)
    comment = Comment.objects.create(task=task, author=author, content=content)
    Task.objects.filter(pk=task.pk).update(comment_count=F("comment_count") + 1)
    data = {**_representation(CommentSerializer, comment), "task_title": task.title}
    publish(type=EventType.COMMENT_CREATED, project_id=task.project_id, data=data, actor=actor)
    return comment


def _require(actor: Actor, project_id: int, operation: Operation) -> str | None:
    """The role check again, under the project's lock: a member removed meanwhile is refused.
    The actor's role (None for the system)."""
    if actor is None:
        return None
    return access_require(user=actor, project_id=project_id, operation=operation)


# If-Match, checked under the row lock the write holds: a write committed since the client's
# read changed the representation, hence its tag, and this one is refused (412), unchanged.
def _require_current_project(if_match: Expected, project: Project, role: str | None) -> None:
    if if_match is not None:  # the representation as its reader got it: with their role
        representation = _representation(ProjectSerializer, project)
        require_current(if_match, {**representation, "role": role or ""})


def _require_current_task(if_match: Expected, task: Task) -> None:
    if if_match is not None:
        require_current(if_match, _representation(TaskSerializer, task))


def _require_assignee(assignee: User | None, project_id: int) -> None:
    if assignee is not None and not assignee_allowed(user=assignee, project_id=project_id):
        raise ValidationError({"assignee": [_NOT_ASSIGNABLE]})


_NOT_ASSIGNABLE = "Not a member of the task's project with role member or above."


def _locked_project(project_id: int) -> Project:
    projects = Project.objects.select_for_update(no_key=True, of=("self",))
    return projects.select_related("owner").get(pk=project_id)


def project_for_write(*, actor: Actor, project_id: int, task: Task | None = None) -> Project:
    """The project a view is about to create a task in (or move `task` to, when the view read
    it with task_for_write), read under its lock in the view's transaction, with the actor's
    role in it as `caller_role` (None: not a member); Project.DoesNotExist for an id no project
    has.

    task_create, called in the same transaction, takes it as it is: the request's project is
    then locked and its role read once, not once to validate the request and again under the
    lock. The role is read after the lock is granted (_locked_task's docstring), by a statement
    of its own sent in the lock's round trip."""
    if not connection.in_atomic_block:
        raise RuntimeError("project_for_write() must run inside the write's transaction")
    if not _is_row_id(project_id):
        raise Project.DoesNotExist(f"no project {project_id!r}")
    if connection.vendor != "postgresql":  # no row locks, raw values, one statement an execute
        project = Project.objects.get(pk=project_id)
        project.caller_role = role_of(user=actor, project_id=project_id)  # type: ignore[attr-defined]
        return project
    if task is not None:
        return _task_project(task, project_id)
    row, role = _fetch_lock_then_role(project_id, actor.pk if actor is not None else 0)
    if row is None:
        raise Project.DoesNotExist(f"project {project_id} is gone")
    project = Project.from_db(connection.alias, _PROJECT_COLUMNS, row)
    project.caller_role = None if role is None else role[0]  # type: ignore[attr-defined]
    return project


def _fetch_lock_then_role(project_id: int, user_id: int) -> tuple[tuple | None, tuple | None]:
    """The project's row under its lock, then the user's role in it, in one round trip: psycopg
    binds the values client-side (Django's default), so one execute can carry two statements,
    and PostgreSQL takes the second's snapshot (READ COMMITTED) once the first has ended."""
    lock_sql, lock_params = compiled(_project_row_lock, project_id)
    role_sql, role_params = compiled(_member_role, project_id, user_id)
    with connection.cursor() as cursor:
        cursor.execute(f"{lock_sql}; {role_sql}", [*lock_params, *role_params])
        row = cursor.fetchone()
        cursor.nextset()
        return row, cursor.fetchone()


def _project_locked_here(project: Project) -> bool:
    return hasattr(project, "caller_role") and connection.in_atomic_block


def task_for_write(
    *, actor: Actor, task_id: int, project_id: object = None, operation=Operation.WRITE_TASKS
) -> Task:
    """The task a view is about to change, read under its lock in the view's transaction, its
    project's lock (and `project_id`'s: where a request body may move it) taken first, in id
    order; only if the actor's role in its project allows `operation` (404, 403 otherwise).

    task_update and task_delete, called in the same transaction, take it as it is: the view's
    write then reads the task once, instead of once to check the request and again under the
    lock. `project_id` is the request body's, unvalidated: anything but a row id is ignored."""
    if not connection.in_atomic_block:
        raise RuntimeError("task_for_write() must run inside the write's transaction")
    if not _is_row_id(task_id):
        raise Task.DoesNotExist(f"no task {task_id!r}")
    other = project_id if _is_row_id(project_id) else 0  # no row has id 0
    with connection.cursor() as cursor:
        cursor.execute(*compiled(_task_projects_lock, task_id, other))
        rows = {row[0]: row for row in cursor.fetchall()}
    locked = _read_locked_task(task_id, set(rows), actor)
    if actor is not None:
        role_allows(locked.caller_role, operation)  # type: ignore[attr-defined]
    locked.locked_projects = frozenset({*rows, locked.project_id})  # type: ignore[attr-defined]
    locked.project_rows = rows  # type: ignore[attr-defined]
    return locked


def _task_project(task: Task, project_id: int) -> Project:
    """The project a write of `task` (task_for_write's) names: as locked with the task, with the
    role read there when it is the task's own; one not locked then is looked up (_locked_task
    locks it, after the task), and its role read by the caller."""
    row = task.project_rows.get(project_id)  # type: ignore[attr-defined]
    if row is None:
        return Project.objects.get(pk=project_id)
    project = Project.from_db(connection.alias, _PROJECT_COLUMNS, row)
    if project_id == task.project_id:
        project.caller_role = task.caller_role  # type: ignore[attr-defined]
    return project


def _is_row_id(value: object) -> bool:
    return type(value) is int and 0 < value < 2**63


def _locked_task(
    task: Task, *other_project_ids: int, actor: Actor = None, operation=Operation.WRITE_TASKS
) -> Task:
    """The task, re-read under its lock, after the locks of its project and `other_project_ids`;
    with an actor, only if their role allows `operation` in the task's project and the others.
    A task from task_for_write (in this transaction) is not read again.

    The roles are read after the projects' locks are granted, in statements of their own (the
    task's in the task's lock): a statement's snapshot is taken when it starts, so a role read
    by the statement that waited for the lock could predate a removal that held it."""
    if _locked_here(task):
        held = task.locked_projects  # type: ignore[attr-defined]
        # Locked, and its role checked, by task_for_write. A project its body did not name
        # there (a move that body could not show) is locked now, after the task: rare.
        _lock_projects(*sorted(set(other_project_ids) - held))
        locked = task
    else:
        project_ids = sorted({task.project_id, *other_project_ids})
        _lock_projects(*project_ids)
        locked = _read_locked_task(task.pk, set(project_ids), actor)
        if actor is not None:
            role_allows(locked.caller_role, operation)  # type: ignore[attr-defined]
    if actor is not None:
        for project_id in set(other_project_ids) - {locked.project_id}:
            role_allows(role_of(user=actor, project_id=project_id), operation)
    return locked


def _read_locked_task(task_id: int, locked_project_ids: set[int], actor: Actor) -> Task:
    """The task under its lock, with the actor's role in its project as `caller_role`, once its
    project is among those locked (it moved meanwhile: that one is locked too)."""
    user_id = actor.pk if actor is not None else None
    locked = next(iter(Task.objects.raw(*compiled(_task_lock, task_id, user_id))), None)
    if locked is None:
        raise Task.DoesNotExist(f"task {task_id} is gone")
    if locked.project_id not in locked_project_ids:  # moved since: lock that one too
        _lock_projects(locked.project_id)
        locked.caller_role = role_of(user=actor, project_id=locked.project_id)  # type: ignore[attr-defined]
    if locked.assignee_id is not None:  # the representation's username, read with the row
        fields = ["id", "username"]
        values = (locked.assignee_id, locked.assignee_username)  # type: ignore[attr-defined]
        locked.assignee = User.from_db(connection.alias, fields, values)
    return locked


def _lock_projects(*project_ids: int) -> None:
    """Lock these projects' rows, in the order given (callers give id order: no deadlocks)."""
    with connection.cursor() as cursor:
        for project_id in project_ids:
            cursor.execute(*compiled(_project_lock, project_id))
            if cursor.fetchone() is None:
                raise Project.DoesNotExist(f"project {project_id} is gone")


# The locks of every task write (compiled once: common.domain.statements). The task's assignee
# is not joined: a PUT replaces it, and otherwise it loads when the representation needs it.
def _project_lock(project_id: int) -> QuerySet:
    projects = Project.objects.filter(pk=project_id).order_by()
    return projects.select_for_update(no_key=True).values_list("pk")


_PROJECT_COLUMNS = [field.attname for field in Project._meta.concrete_fields]


def _project_row_lock(project_id: int) -> QuerySet:
    """The project's row (its columns in _PROJECT_COLUMNS' order) under its lock."""
    projects = Project.objects.filter(pk=project_id).order_by()
    return projects.select_for_update(no_key=True).values_list(*_PROJECT_COLUMNS)


def _member_role(project_id: int, user_id: int) -> QuerySet:
    memberships = Membership.objects.filter(project_id=project_id, user_id=user_id)
    return memberships.order_by().values_list("role")


def _task_projects_lock(task_id: int, project_id: int) -> QuerySet:
    """Lock the task's project and `project_id`, in id order (one statement: LockRows above
    the sort); their rows, as _project_row_lock's."""
    task_project = Task.objects.filter(pk=task_id).values("project_id")
    projects = Project.objects.filter(Q(pk__in=Subquery(task_project)) | Q(pk=project_id))
    return projects.order_by("pk").select_for_update(no_key=True).values_list(*_PROJECT_COLUMNS)


def _task_lock(task_id: int, user_id: int) -> QuerySet:
    """The task under its lock, with the user's role in its project as `caller_role` and its
    assignee's username (the task's row alone is locked)."""
    role = Membership.objects.filter(project_id=OuterRef("project_id"), user_id=user_id)
    tasks = Task.objects.filter(pk=task_id).order_by().select_for_update(of=("self",))
    return tasks.annotate(
        caller_role=Subquery(role.values("role")), assignee_username=F("assignee__username")
    )


def _publish_project(type: EventType, project: Project, actor: Actor) -> None:
    data = _representation(ProjectSerializer, project)
    publish(type=type, project_id=project.id, data=data, actor=actor)


def _publish_task(
    type: EventType, task: Task, actor: Actor, *, moved_from: int | None = None
) -> None:
    data = _representation(TaskSerializer, task)
    publish(type=type, project_id=task.project_id, data=data, actor=actor, moved_from=moved_from)


# One serializer per class, its fields built once: a representation is then only its fields'
# own work (building a ModelSerializer's fields cost more than rendering the instance).
_serializers: dict[type, Serializer] = {}


def _representation(serializer_class: type[Serializer], instance) -> dict[str, Any]:
    serializer = _serializers.get(serializer_class)
    if serializer is None:
        serializer = _serializers.setdefault(serializer_class, serializer_class())
    return dict(serializer.to_representation(instance))


def _track_completion(task: Task, *, was_completed: bool) -> None:
    is_completed = task.status == Task.Status.COMPLETED
    if is_completed and not was_completed:
        task.completed_at = timezone.now()
    elif not is_completed:
        task.completed_at = None
