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
    return _task_rows().render(_page_by_ids(queryset))


def task_rows(queryset: QuerySet[Task]) -> list[dict]:
    """The tasks as TaskSerializer represents them (task_rows_json's rows, not yet JSON)."""
    return _task_rows().rows(_page_by_ids(queryset))


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


def _page_by_ids(queryset: QuerySet) -> QuerySet:
    """A page (a sliced queryset) as the rows whose ids the slice selects, in the same order.

    The database then skips the rows before the page (its OFFSET) reading only their ids, and
    joins and writes out only the page's own rows; deep pages otherwise cost every row before
    them in full.
    """
    if not queryset.query.low_mark:  # no rows before the page: nothing to skip
        return queryset
    rows = queryset.model._default_manager.filter(pk__in=queryset.values("pk"))
    return rows.order_by(*queryset.query.order_by)


@functools.cache
def _task_rows() -> ValuesEncoder:
    return ValuesEncoder(TaskSerializer)
