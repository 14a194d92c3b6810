"""Reads: the querysets behind every list and detail, with the joins their representations need."""

from django.db.models import QuerySet

from common.models import Comment, Project, SummaryReport, Task


def project_list() -> QuerySet[Project]:
    return Project.objects.select_related("owner").order_by("id")


def task_list() -> QuerySet[Task]:
    return Task.objects.select_related("assignee").order_by("id")


def comment_list(*, task: Task) -> QuerySet[Comment]:
    return Comment.objects.filter(task=task).order_by("created_at", "id")


def summary_list(*, project: Project) -> QuerySet[SummaryReport]:
    return SummaryReport.objects.filter(project=project).order_by("-date", "-id")
