"""The projects function's own representations: a project with the caller's role, members."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from common.api.serializers import ModelSerializer, ProjectSerializer, UsernameField
from common.domain.access import Role, role_of
from common.domain.models import Membership


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
