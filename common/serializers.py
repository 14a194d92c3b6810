"""The JSON representations of the domain, shared by the HTTP functions and the realtime events.

One serializer per resource, so an event's `data` is always what the matching GET returns.
"""

from datetime import UTC

from django.contrib.auth import get_user_model
from django.db import models
from rest_framework import serializers

from common.access import project_list_visible
from common.models import Comment, Project, SummaryReport, Task


class UTCDateTimeField(serializers.DateTimeField):
    """Reads naive input in TIME_ZONE (DRF's default) and always writes RFC 3339 UTC with `Z`."""

    def to_internal_value(self, value):
        try:
            return super().to_internal_value(value)
        except OverflowError:  # a naive year 1 or 9999 that TIME_ZONE pushes off the calendar
            self.fail("overflow")

    def to_representation(self, value):
        if not value:
            return None
        return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


class UsernameField(serializers.SlugRelatedField):
    """A user named by username; a name with NUL cannot exist (PostgreSQL refuses to look)."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class VisibleProjectField(serializers.PrimaryKeyRelatedField):
    """A project id the caller may see (common.access); any other is 400, as for an unknown id.

    Ids are integers: a float (1.5, 1e400) is refused, not truncated or overflowed.
    """

    def __init__(self, **kwargs):
        super().__init__(
            queryset=Project.objects.all(), pk_field=serializers.IntegerField(), **kwargs
        )

    def get_queryset(self):
        request = self.context.get("request")
        return project_list_visible(request.user) if request else super().get_queryset()


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UTCDateTimeField,
    }


class ProjectSerializer(ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

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
