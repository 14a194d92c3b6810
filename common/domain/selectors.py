"""Reads: the querysets behind every list and detail, with the joins their representations need."""

import functools

from django.db.models import QuerySet

from common.api.serializers import TaskSerializer, ValuesEncoder
from common.domain.models import Comment, Project, SummaryReport, Task


def project_list() -> QuerySet[Project]:
    return _with_username(Project.objects.all(), "owner").order_by("id")


def task_list() -> QuerySet[Task]:
    return _with_username(Task.objects.all(), "assignee").order_by("id")


def task_rows_json(queryset: QuerySet[Task]) -> bytes:
    """The tasks as a JSON array, as TaskSerializer writes them, from one `.values_list()`."""
    return _task_rows().render(queryset)


def comment_list(*, task: Task) -> QuerySet[Comment]:
    return Comment.objects.filter(task=task).order_by("created_at", "id")


def summary_list(*, project: Project) -> QuerySet[SummaryReport]:
    return SummaryReport.objects.filter(project=project).order_by("-date", "-id")


def _with_username(queryset: QuerySet, relation: str) -> QuerySet:
    """Join the related user, loading only the username the representation shows.

    A whole user row (password hash, two timestamps to parse) per listed row costs more than
    the row itself.
    """
    fields = [field.name for field in queryset.model._meta.concrete_fields]
    return queryset.select_related(relation).only(*fields, f"{relation}__username")


@functools.cache
def _task_rows() -> ValuesEncoder:
    return ValuesEncoder(TaskSerializer)
