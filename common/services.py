"""Writes: every change to projects, tasks and comments goes through one of these functions.

Each runs in one transaction, so a write happens whole or not at all.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from common.models import Comment, Project, Task


@transaction.atomic
def project_create(*, actor: AbstractBaseUser | None, name: str, description: str = "") -> Project:
    return Project.objects.create(name=name, description=description, owner=actor)


@transaction.atomic
def project_update(*, project: Project, **changes: Any) -> Project:
    for field, value in changes.items():
        setattr(project, field, value)
    project.save()
    return project


@transaction.atomic
def project_delete(*, project: Project) -> None:
    project.delete()


@transaction.atomic
def task_create(
    *,
    project: Project,
    title: str,
    due_date: datetime,
    description: str = "",
    status: str = Task.Status.PENDING,
    assignee: AbstractBaseUser | None = None,
) -> Task:
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
    return task


@transaction.atomic
def task_update(*, task: Task, **changes: Any) -> Task:
    """Apply `changes` to the task, read under its row lock so concurrent updates serialise."""
    task = Task.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=task.pk)
    was_completed = task.status == Task.Status.COMPLETED
    if "due_date" in changes and changes["due_date"] != task.due_date:
        task.reminder_sent_at = None  # a new due date deserves its own reminder
    for field, value in changes.items():
        setattr(task, field, value)
    _track_completion(task, was_completed=was_completed)
    task.save()
    return task


@transaction.atomic
def task_delete(*, task: Task) -> None:
    task.delete()


@transaction.atomic
def comment_create(*, task: Task, author: str, content: str) -> Comment:
    comment = Comment.objects.create(task=task, author=author, content=content)
    Task.objects.filter(pk=task.pk).update(comment_count=F("comment_count") + 1)
    return comment


def _track_completion(task: Task, *, was_completed: bool) -> None:
    is_completed = task.status == Task.Status.COMPLETED
    if is_completed and not was_completed:
        task.completed_at = timezone.now()
    elif not is_completed:
        task.completed_at = None
