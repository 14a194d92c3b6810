"""The projects function's own representations: a project with the caller's role, members,
webhooks and their deliveries, the activity feed."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from common.api.serializers import ModelSerializer, ProjectSerializer, UsernameField
from common.domain.access import Role, role_of
from common.domain.events import EventType
from common.domain.models import Membership, Webhook, WebhookDelivery


class ProjectWithRoleSerializer(ProjectSerializer):
    """A project as its reader sees it: with their own `role` (events carry none)."""

    role = serializers.SerializerMethodField()

    class Meta(ProjectSerializer.Meta):
        ref_name = "Project"  # the API's only project shape
        fields = [*ProjectSerializer.Meta.fields[:4], "role", *ProjectSerializer.Meta.fields[4:]]

    def get_role(self, project) -> str:
        if (role := getattr(project, "role", None)) is not None:  # the visible list's annotation
            return role
        return role_of(user=self.context["request"].user, project_id=project.pk) or ""


class MembershipSerializer(ModelSerializer):
    """A member: `{"username", "role", "added_at"}`; `username` is written only on add."""

    username = UsernameField(source="user", queryset=get_user_model().objects.all())
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    class Meta:
        ref_name = "Member"
        model = Membership
        fields = ["username", "role", "added_at"]
        read_only_fields = ["added_at"]


class MembershipRoleSerializer(MembershipSerializer):
    """A member's role, the one field a change writes."""

    username = serializers.CharField(source="user.username", read_only=True)  # type: ignore[assignment]  # read-only here
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta(MembershipSerializer.Meta):
        ref_name = "MemberRole"


class WebhookSerializer(ModelSerializer):
    """A webhook: `{"id", "url", "events", "active", "created_at"}`, never its secret."""

    events = serializers.ListField(
        child=serializers.CharField(max_length=32),
        default=["*"],
        allow_empty=False,  # nothing at all: turn it off (`active`) or delete it instead
        max_length=len(EventType) + 1,
    )
    url = serializers.URLField(max_length=2048)

    class Meta:
        ref_name = "Webhook"
        model = Webhook
        fields = ["id", "url", "events", "active", "created_at"]
        read_only_fields = ["id", "created_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    """The answer that makes a webhook: with its `secret`, shown this once."""

    secret = serializers.CharField(read_only=True)

    class Meta(WebhookSerializer.Meta):
        ref_name = "WebhookWithSecret"
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = [*WebhookSerializer.Meta.read_only_fields, "secret"]


class WebhookDeliverySerializer(ModelSerializer):
    """One delivery attempt of one event."""

    event = serializers.UUIDField(source="event_id", read_only=True)

    class Meta:
        ref_name = "WebhookDelivery"
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "attempt",
            "status",
            "response_status",
            "duration_ms",
            "error",
            "created_at",
        ]
        read_only_fields = fields


class EnvelopeSerializer(serializers.Serializer):
    """An event as the websocket sends it (for the schema: the feed is rendered as-is)."""

    type = serializers.ChoiceField(choices=[str(t) for t in EventType])
    project = serializers.IntegerField()
    seq = serializers.IntegerField()
    id = serializers.UUIDField()
    occurred_at = serializers.DateTimeField()
    actor = serializers.CharField(allow_null=True)
    data = serializers.DictField()  # type: ignore[assignment]  # the envelope's field, not .data

    class Meta:
        ref_name = "Event"


class EventPageSerializer(serializers.Serializer):
    results = EnvelopeSerializer(many=True)
    next = serializers.URLField(allow_null=True)

    class Meta:
        ref_name = "EventPage"


class EventsGoneSerializer(serializers.Serializer):
    detail = serializers.CharField()
    oldest = serializers.IntegerField(help_text="The oldest seq still kept.")

    class Meta:
        ref_name = "EventsGone"
