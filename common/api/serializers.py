"""The JSON representations of the domain, shared by the HTTP functions and the realtime events.

One serializer per resource, so an event's `data` is always what the matching GET returns.
"""

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, models
from django.db.models import QuerySet
from rest_framework import relations, serializers
from rest_framework.renderers import JSONRenderer

from common.api.timestamps import RFC3339UTC, rfc3339_utc
from common.domain.access import role_of
from common.domain.models import Comment, Project, SummaryReport, Task


class UTCDateTimeField(serializers.DateTimeField):
    """Reads naive input in TIME_ZONE (DRF's default) and always writes RFC 3339 UTC with `Z`."""

    def to_internal_value(self, value):
        try:
            return super().to_internal_value(value)
        except OverflowError:  # a naive year 1 or 9999 that TIME_ZONE pushes off the calendar
            self.fail("overflow")

    def to_representation(self, value):
        return rfc3339_utc(value) if value else None


class UsernameField(serializers.SlugRelatedField):
    """A user named by username; a name with NUL cannot exist (PostgreSQL refuses to look)."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class VisibleProjectField(serializers.PrimaryKeyRelatedField):
    """A project id the caller may see (domain.access); any other is 400, as for an unknown id.

    Ids are integers: a float (1.5, 1e400) is refused, not truncated or overflowed. A write's
    view may put `project_for_write` in the context: a function of `project_id` answering the
    project, locked for the write, with the caller's role as `caller_role`, in place of this
    field's own lookup and role check (domain.services.project_for_write).
    """

    def __init__(self, **kwargs):
        self.pk_id = serializers.IntegerField()
        super().__init__(queryset=Project.objects.all(), pk_field=self.pk_id, **kwargs)

    def to_internal_value(self, data):
        for_write = self.context.get("project_for_write")
        project = self._for_write(for_write, data) if for_write else super().to_internal_value(data)
        request = self.context.get("request")
        if request and self._role(request.user, project) is None:
            self.fail("does_not_exist", pk_value=data)
        return project

    def _for_write(self, for_write: Callable[..., Project], data) -> Project:
        pk = self.pk_id.to_internal_value(data)  # as the lookup's: its errors, then the id
        try:
            return for_write(project_id=pk)
        except Project.DoesNotExist:
            self.fail("does_not_exist", pk_value=pk)

    @staticmethod
    def _role(user, project: Project) -> str | None:
        if hasattr(project, "caller_role"):  # read with the write's lock
            return project.caller_role
        # The caller's role by one compiled statement: cheaper than a lookup filtered by it.
        return role_of(user=user, project_id=project.pk)


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UTCDateTimeField,
    }


class ProjectSerializer(ModelSerializer):
    owner: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Project
        fields = ["id", "name", "description", "owner", "created_at", "updated_at"]


class TaskSerializer(ModelSerializer):
    project = VisibleProjectField()
    assignee = UsernameField(
        queryset=get_user_model().objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = Task
        fields = [
            "id",
            "project",
            "title",
            "description",
            "status",
            "assignee",
            "due_date",
            "comment_count",
            "reminder_sent_at",
            "completed_at",
            "created_at",
            "updated_at",
        ]


class CommentSerializer(ModelSerializer):
    author = serializers.CharField(read_only=True)  # always the caller: nobody writes as another

    class Meta:
        model = Comment
        fields = ["id", "task", "author", "content", "created_at"]
        read_only_fields = ["task"]


class SummaryReportSerializer(ModelSerializer):
    class Meta:
        model = SummaryReport
        fields = [
            "id",
            "project",
            "date",
            "generated_at",
            *SummaryReport.COUNTS,
            "emailed_to",
            "email_status",
        ]
        read_only_fields = fields


class ValuesEncoder:
    """A serializer's representation of a queryset's rows, read with `.values_list()`.

    The same JSON as the serializer writes (a test holds them equal), built from its own fields,
    without a model instance or a field lookup per row: a list page's miss costs about its query.
    A relation is read as a column (`project` as the id, `assignee` as `assignee__username`),
    every other field through its own `to_representation`, except where that is the identity.
    On PostgreSQL the database writes the timestamps (timestamps.RFC3339UTC): parsing them into
    datetimes only to write them out again was most of a page's time.
    """

    def __init__(self, serializer_class: type[serializers.Serializer]) -> None:
        fields = [field for field in serializer_class().fields.values() if not field.write_only]
        self.names = [str(field.field_name) for field in fields]
        self.columns: list[Any] = [_column(field) for field in fields]
        self.converters = [
            (index, convert) for index, field in enumerate(fields) if (convert := _converter(field))
        ]
        written = {i for i, field in enumerate(fields) if isinstance(field, UTCDateTimeField)}
        self.written_columns = [
            RFC3339UTC(column) if index in written else column
            for index, column in enumerate(self.columns)
        ]
        self.written_converters = [item for item in self.converters if item[0] not in written]

    def rows(self, queryset: QuerySet) -> list[dict[str, Any]]:
        columns, converters = self.columns, self.converters
        if connections[queryset.db].vendor == "postgresql":
            columns, converters = self.written_columns, self.written_converters
        rows = []
        for values in queryset.values_list(*columns):
            row = list(values)
            for index, convert in converters:
                if row[index] is not None:  # None is null, as the serializer writes it
                    row[index] = convert(row[index])
            rows.append(dict(zip(self.names, row, strict=True)))
        return rows

    def render(self, queryset: QuerySet) -> bytes:
        return JSONRenderer().render(self.rows(queryset))


# Fields whose to_representation returns a database value of theirs unchanged.
_IDENTITY = (serializers.CharField, serializers.IntegerField, serializers.BooleanField)


def _column(field: serializers.Field) -> str:
    source = str(field.source).replace(".", "__")
    if isinstance(field, serializers.SlugRelatedField):
        return f"{source}__{field.slug_field}"
    return source  # a primary-key relation reads as its id


def _converter(field: serializers.Field) -> Callable[[Any], Any] | None:
    if isinstance(field, serializers.SlugRelatedField) or type(field) in _IDENTITY:
        return None
    if isinstance(field, serializers.ChoiceField) and all(
        isinstance(value, str | int) and str(value) == key
        for key, value in field.choice_strings_to_values.items()
    ):
        return None  # a stored choice is its own representation
    if isinstance(field, relations.PrimaryKeyRelatedField):
        return lambda pk: field.to_representation(relations.PKOnlyObject(pk=pk))
    if isinstance(field, UTCDateTimeField):
        return rfc3339_utc
    return field.to_representation
