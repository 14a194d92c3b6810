"""Writes: every change to users, projects, tasks and comments goes through one of these functions.

Each runs in one transaction and ends with one `publish`, so a write and its event happen whole
or not at all. `actor` is the user making the change (None for the system).

The instance a view passes in may be stale by the time the write runs: each service re-reads
what it changes under row locks, taken projects first (in id order), then the task, so
concurrent writes wait for each other instead of deadlocking. A row deleted meanwhile raises
its model's DoesNotExist, which answers 404.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from common import effects
from common.events import EventType, publish
from common.models import Comment, Project, Task
from common.serializers import CommentSerializer, ProjectSerializer, TaskSerializer

Actor = AbstractBaseUser | None


@transaction.atomic
def user_update(*, user: AbstractBaseUser, **changes: Any) -> AbstractBaseUser:
    """Change a user's fields. Every list shows usernames; a deactivated user is refused at once,
    the cache's hit path in front of Django included."""
    for field, value in changes.items():
        setattr(user, field, value)
    user.save(update_fields=list(changes))
    effects.on_commit(
        versions=["users"] if "username" in changes else [],
        users_gone=[user.pk] if changes.get("is_active") is False else [],
    )
    return user


def user_deactivate(*, user: AbstractBaseUser) -> AbstractBaseUser:
    return user_update(user=user, is_active=False)


@transaction.atomic
def user_delete(*, user: AbstractBaseUser) -> None:
    """Delete a user: their projects lose their owner and their tasks their assignee."""
    user_id = user.pk
    user.delete()
    effects.on_commit(versions=["users"], users_gone=[user_id])


@transaction.atomic
def project_create(*, actor: Actor, name: str, description: str = "") -> Project:
    project = Project.objects.create(name=name, description=description, owner=actor)
    _publish_project(EventType.PROJECT_CREATED, project, actor)
    return project


@transaction.atomic
def project_update(*, actor: Actor, project: Project, **changes: Any) -> Project:
    project = _locked_project(project.pk)
    for field, value in changes.items():
        setattr(project, field, value)
    project.save(update_fields=[*changes, "updated_at"])  # never event_seq: publish owns it
    _publish_project(EventType.PROJECT_UPDATED, project, actor)
    return project


@transaction.atomic
def project_delete(*, actor: Actor, project: Project) -> None:
    """Delete the project with its tasks and comments: one `project.deleted` covers them all."""
    project = _locked_project(project.pk)
    publish(
        type=EventType.PROJECT_DELETED, project_id=project.id, data={"id": project.id}, actor=actor
    )
    project.delete()


@transaction.atomic
def task_create(
    *,
    actor: Actor,
    project: Project,
    title: str,
    due_date: datetime,
    description: str = "",
    status: str = Task.Status.PENDING,
    assignee: AbstractBaseUser | None = None,
) -> Task:
    project = _locked_project(project.pk)
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


@transaction.atomic
def task_update(*, actor: Actor, task: Task, **changes: Any) -> Task:
    """Apply `changes` to the task. A task moved to another project is announced there."""
    moved_to = changes.get("project")
    task = _locked_task(task, *([moved_to.pk] if moved_to else []))
    project_before = task.project_id
    was_completed = task.status == Task.Status.COMPLETED
    if "due_date" in changes and changes["due_date"] != task.due_date:
        task.reminder_sent_at = None  # a new due date deserves its own reminder
    for field, value in changes.items():
        setattr(task, field, value)
    _track_completion(task, was_completed=was_completed)
    task.save()
    _publish_task(EventType.TASK_UPDATED, task, actor, moved_from=project_before)
    return task


@transaction.atomic
def task_delete(*, actor: Actor, task: Task) -> None:
    task = _locked_task(task)
    data = {"id": task.id, "project": task.project_id}
    task.delete()
    publish(type=EventType.TASK_DELETED, project_id=data["project"], data=data, actor=actor)


@transaction.atomic
def task_mark_reminded(*, task: Task, due_date: datetime, sent_at: datetime) -> Task | None:
    """Record that the reminder for the task's `due_date` went out, announced as `task.updated`.

    None, and nothing changes, when the task has another due date by now (it was re-armed).
    """
    task = _locked_task(task)
    if task.due_date != due_date:
        return None
    task.reminder_sent_at = sent_at
    task.save(update_fields=["reminder_sent_at"])  # not updated_at: nobody edited the task
    _publish_task(EventType.TASK_UPDATED, task, None)
    return task


@transaction.atomic
def comment_create(*, actor: Actor, task: Task, author: str, content: str) -> Comment:
    task = _locked_task(task)
    comment = Comment.objects.create(task=task, author=author, content=content)
    Task.objects.filter(pk=task.pk).update(comment_count=F("comment_count") + 1)
    data = {**CommentSerializer(comment).data, "task_title": task.title}
    publish(type=EventType.COMMENT_CREATED, project_id=task.project_id, data=data, actor=actor)
    return comment


def _locked_project(project_id: int) -> Project:
    projects = Project.objects.select_for_update(no_key=True, of=("self",))
    return projects.select_related("owner").get(pk=project_id)


def _locked_task(task: Task, *other_project_ids: int) -> Task:
    """The task, re-read under its lock, after the locks of its project and `other_project_ids`."""
    project_ids = sorted({task.project_id, *other_project_ids})
    list(Project.objects.filter(pk__in=project_ids).order_by("pk").select_for_update(no_key=True))
    locked = Task.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=task.pk)
    if locked.project_id not in project_ids:  # moved since the caller read it: lock that one too
        _locked_project(locked.project_id)
    return locked


def _publish_project(type: EventType, project: Project, actor: Actor) -> None:
    data = ProjectSerializer(project).data
    publish(type=type, project_id=project.id, data=data, actor=actor)


def _publish_task(
    type: EventType, task: Task, actor: Actor, *, moved_from: int | None = None
) -> None:
    data = TaskSerializer(task).data
    publish(type=type, project_id=task.project_id, data=data, actor=actor, moved_from=moved_from)


def _track_completion(task: Task, *, was_completed: bool) -> None:
    is_completed = task.status == Task.Status.COMPLETED
    if is_completed and not was_completed:
        task.completed_at = timezone.now()
    elif not is_completed:
        task.completed_at = None
