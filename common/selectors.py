"""Reads: the querysets behind every list and detail, with the joins their representations need."""

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, QuerySet

from common.models import Comment, Project, SummaryReport, Task
from common.serializers import TaskSerializer


def project_list() -> QuerySet[Project]:
    return _with_username(Project.objects.all(), "owner").order_by("id")


def task_list() -> QuerySet[Task]:
    return _with_username(Task.objects.all(), "assignee").order_by("id")


def task_rows_json(queryset: QuerySet[Task]) -> bytes | None:
    """The tasks as a JSON array built by PostgreSQL in one query, or None on other databases.

    The same objects as TaskSerializer writes (a test holds the two equal), without a model
    instance or a serializer per row: ten thousand tasks cost about what the query does.
    """
    if connection.vendor != "postgresql":
        return None
    columns = {name: _RENAMED.get(name, name) for name in TaskSerializer.Meta.fields}
    rows = queryset.values(
        *(column for column in columns.values() if column != "assignee_username"),
        assignee_username=F("assignee__username"),
    )
    try:
        sql, params = rows.query.sql_with_params()
    except EmptyResultSet:  # an empty page: nothing to ask
        return b"[]"
    fields = ", ".join(f"'{name}', {_json_value(column)}" for name, column in columns.items())
    aggregate = f"json_agg(json_build_object({fields}) ORDER BY {_order_by(queryset)})"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce({aggregate}, '[]')::text FROM ({sql}) t", params)
        return cursor.fetchone()[0].encode()


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


# TaskSerializer's fields whose column in task_rows_json's query has another name
_RENAMED = {"project": "project_id", "assignee": "assignee_username"}
_TIMESTAMPS = {"due_date", "reminder_sent_at", "completed_at", "created_at", "updated_at"}
# RFC 3339 in UTC with `Z`, microseconds only when there are any: Python's isoformat().
_ISO_SECONDS = """'YYYY-MM-DD"T"HH24:MI:SS"Z"'"""
_ISO_MICROSECONDS = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""


def _order_by(queryset: QuerySet) -> str:
    """The queryset's ordering over the subquery's columns, so the array keeps the page's order."""
    ordering = [name for name in queryset.query.order_by if isinstance(name, str)] or ["id"]
    fields = ("id" if name.lstrip("-") == "pk" else name.lstrip("-") for name in ordering)
    columns = (_RENAMED.get(field, field) for field in fields)
    directions = ("DESC" if name.startswith("-") else "ASC" for name in ordering)
    return ", ".join(
        f"t.{column} {direction}" for column, direction in zip(columns, directions, strict=True)
    )


def _json_value(column: str) -> str:
    if column not in _TIMESTAMPS:
        return f"t.{column}"
    whole_second = f"mod(extract(microseconds FROM t.{column})::bigint, 1000000) = 0"
    formats = f"CASE WHEN {whole_second} THEN {_ISO_SECONDS} ELSE {_ISO_MICROSECONDS} END"
    return f"to_char(t.{column} AT TIME ZONE 'UTC', {formats})"
