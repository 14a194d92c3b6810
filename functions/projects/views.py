"""Projects over HTTP: validate, make one service call, answer."""

from rest_framework import generics

from common.api.conditional import ConditionalMixin
from common.api.filters import ProjectFilter
from common.api.idempotency import IdempotentPostMixin
from common.api.serializers import SummaryReportSerializer
from common.api.views import CreatedLocationMixin
from common.domain import selectors, services
from common.domain.access import Operation, ProjectAccess, project_list_visible
from common.domain.models import SummaryReport
from common.infra.cache import CachedListMixin
from functions.projects.serializers import ProjectWithRoleSerializer


class ProjectList(
    IdempotentPostMixin,
    ConditionalMixin,
    CreatedLocationMixin,
    CachedListMixin,
    generics.ListCreateAPIView,
):
    """The caller's projects: a cached page of them, or a new one (the caller owns it)."""

    cache_resource = "projects"
    location_view = "project-detail"
    serializer_class = ProjectWithRoleSerializer
    filterset_class = ProjectFilter

    def get_queryset(self):
        return project_list_visible(self.request.user, selectors.project_list())

    def perform_create(self, serializer):
        serializer.instance = services.project_create(
            actor=self.request.user, **serializer.validated_data
        )


class ProjectDetail(ConditionalMixin, generics.RetrieveUpdateDestroyAPIView):
    """One project; deleting it deletes its tasks and their comments."""

    serializer_class = ProjectWithRoleSerializer
    permission_classes = [*generics.GenericAPIView.permission_classes, ProjectAccess]
    operations = {
        "GET": Operation.READ,
        "PUT": Operation.UPDATE_PROJECT,
        "PATCH": Operation.UPDATE_PROJECT,
        "DELETE": Operation.DELETE_PROJECT,
    }

    def get_queryset(self):
        return project_list_visible(self.request.user, selectors.project_list())

    def perform_update(self, serializer):
        serializer.instance = services.project_update(
            actor=self.request.user,
            project=serializer.instance,
            if_match=self.if_match,
            **serializer.validated_data,
        )

    def perform_destroy(self, instance):
        services.project_delete(actor=self.request.user, project=instance, if_match=self.if_match)


class ProjectSummaryList(generics.ListAPIView):
    """A project's daily summary reports, newest first."""

    serializer_class = SummaryReportSerializer
    queryset = SummaryReport.objects.none()  # names the model for the schema; rows: get_queryset
    permission_classes = [*generics.GenericAPIView.permission_classes, ProjectAccess]
    operations = {"GET": Operation.READ}

    def access_project_id(self) -> int:
        return self.kwargs["pk"]

    def get_queryset(self):
        return selectors.summary_list(project=self.kwargs["pk"])
