"""Query-string filters for the project and task lists. An invalid value answers 400."""

from datetime import UTC

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django_filters.fields import IsoDateTimeField

from common.domain.access import project_list_visible
from common.domain.models import Project, Task


class UTCDateTimeField(IsoDateTimeField):
    """An ISO-8601 datetime, normalised to UTC: databases only take offsets up to +-15:59."""

    def to_python(self, value):
        value = super().to_python(value)
        try:
            return value and value.astimezone(UTC)
        except OverflowError as exc:  # an offset that pushes year 1 or 9999 off the calendar
            raise forms.ValidationError("Date is out of range.", code="invalid") from exc


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


class OrderingFilter(django_filters.OrderingFilter):
    """Ordering with `id` as the tie-breaker, so pages never overlap or skip rows."""

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        qs = super().filter(qs, value)
        if value and not any(field.lstrip("-") == "id" for field in value):
            qs = qs.order_by(*qs.query.order_by, "id")
        return qs


def _search(fields: tuple[str, ...]):
    def search(queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = Q()
        for field in fields:
            query |= Q(**{f"{field}__icontains": value})
        return queryset.filter(query)

    return search


class ProjectFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method=_search(("name", "description")), help_text="Text in name or description."
    )
    ordering = OrderingFilter(fields=("id", "name", "created_at", "updated_at"))

    class Meta:
        model = Project
        fields = ["search", "ordering"]


def _visible_projects(request) -> QuerySet[Project]:
    # A project the caller cannot see is 400, as an unknown one is: existence is not revealed.
    return project_list_visible(request.user) if request else Project.objects.none()


class TaskFilter(django_filters.FilterSet):
    project = django_filters.ModelChoiceFilter(queryset=_visible_projects)
    status = django_filters.ChoiceFilter(choices=Task.Status.choices)
    assignee = django_filters.ModelChoiceFilter(
        queryset=get_user_model().objects.all(), to_field_name="username"
    )
    due_before = UTCDateTimeFilter(
        field_name="due_date", lookup_expr="lt", help_text="Due strictly before this time."
    )
    due_after = UTCDateTimeFilter(
        field_name="due_date", lookup_expr="gt", help_text="Due strictly after this time."
    )
    search = django_filters.CharFilter(
        method=_search(("title", "description")), help_text="Text in title or description."
    )
    ordering = OrderingFilter(fields=("id", "due_date", "created_at", "updated_at", "status"))

    class Meta:
        model = Task
        fields = ["project", "status", "assignee", "due_before", "due_after", "search", "ordering"]
