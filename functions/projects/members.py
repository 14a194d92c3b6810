"""A project's members over HTTP: /projects/{id}/members/ and /projects/{id}/members/{username}/.

Validate, make one membership service call, answer. Who may grant which role is the
services' rule (common.domain.memberships); a view only declares what each method needs.
"""

from django.shortcuts import get_object_or_404
from rest_framework import generics

from common.api.idempotency import IdempotentPostMixin
from common.api.views import CreatedLocationMixin
from common.domain import memberships
from common.domain.access import Operation, ProjectAccess
from common.domain.models import Membership, Project
from functions.projects.serializers import MembershipRoleSerializer, MembershipSerializer


class _ProjectMembers(generics.GenericAPIView):
    """The members of the project in the URL; 404 for a caller who is not one of them."""

    permission_classes = [*generics.GenericAPIView.permission_classes, ProjectAccess]
    queryset = Membership.objects.none()  # names the model for the schema; rows: get_queryset

    def access_project_id(self) -> int:
        return self.kwargs["pk"]

    def get_queryset(self):
        members = Membership.objects.filter(project_id=self.kwargs["pk"]).select_related("user")
        return members.order_by("user__username")


class MemberList(
    IdempotentPostMixin, CreatedLocationMixin, _ProjectMembers, generics.ListCreateAPIView
):
    """The project's members by username, or a new one (role default `member`)."""

    serializer_class = MembershipSerializer
    location_view = "project-member"

    def location_kwargs(self, data):
        return {"pk": self.kwargs["pk"], "username": data["username"]}

    operations = {"GET": Operation.READ, "POST": Operation.MANAGE_MEMBERS}

    def perform_create(self, serializer):
        serializer.instance = memberships.membership_add(
            actor=self.request.user,
            project=Project(pk=self.kwargs["pk"]),
            user=serializer.validated_data["user"],
            role=serializer.validated_data["role"],
        )


class MemberDetail(_ProjectMembers, generics.RetrieveUpdateDestroyAPIView):
    """One member: their role, a new role (`owner` transfers ownership), or their removal."""

    serializer_class = MembershipRoleSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]
    operations = {
        "GET": Operation.READ,
        "PATCH": Operation.MANAGE_MEMBERS,
        "DELETE": Operation.REMOVE_MEMBER,
    }
    documented_method_errors = {"DELETE": {"400": "The owner cannot leave; transfer first."}}

    def get_object(self):
        return get_object_or_404(self.get_queryset(), user__username=self.kwargs["username"])

    def perform_update(self, serializer):
        membership = serializer.instance
        serializer.instance = memberships.membership_change(
            actor=self.request.user,
            project=membership.project,
            user=membership.user,
            role=serializer.validated_data.get("role", membership.role),
        )

    def perform_destroy(self, instance):
        memberships.membership_remove(
            actor=self.request.user, project=instance.project, user=instance.user
        )
