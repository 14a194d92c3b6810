"""Projects over HTTP: validate, make one service call, answer."""

from django.shortcuts import get_object_or_404
from rest_framework import generics

from common import selectors, services
from common.cache import CachedListMixin
from common.filters import ProjectFilter
from common.models import SummaryReport
from common.serializers import ProjectSerializer, SummaryReportSerializer


class ProjectList(CachedListMixin, generics.ListCreateAPIView):
    """Projects: a cached page of them, or a new one."""

    cache_resource = "projects"
    serializer_class = ProjectSerializer
    filterset_class = ProjectFilter

    def get_queryset(self):
        return selectors.project_list()

    def perform_create(self, serializer):
        serializer.instance = services.project_create(
            actor=self.request.user, **serializer.validated_data
        )


class ProjectDetail(generics.RetrieveUpdateDestroyAPIView):
    """One project; deleting it deletes its tasks and their comments."""

    serializer_class = ProjectSerializer

    def get_queryset(self):
        return selectors.project_list()

    def perform_update(self, serializer):
        serializer.instance = services.project_update(
            actor=self.request.user, project=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.project_delete(actor=self.request.user, project=instance)


class ProjectSummaryList(generics.ListAPIView):
    """A project's daily summary reports, newest first."""

    serializer_class = SummaryReportSerializer
    queryset = SummaryReport.objects.none()  # names the model for the schema; rows: get_queryset

    def get_queryset(self):
        project = get_object_or_404(selectors.project_list(), pk=self.kwargs["pk"])
        return selectors.summary_list(project=project)
