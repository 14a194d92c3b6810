"""Tasks over HTTP: validate, make one service call, answer."""

from collections.abc import Mapping
from functools import partial
from typing import cast

from django.db import transaction
from django.http import Http404
from rest_framework import generics
from rest_framework.permissions import SAFE_METHODS
from rest_framework.renderers import JSONRenderer

from common.api.conditional import ConditionalMixin
from common.api.filters import TaskFilter
from common.api.idempotency import IdempotentPostMixin
from common.api.pagination import PageNumberPagination
from common.api.serializers import TaskSerializer
from common.api.views import CreatedLocationMixin
from common.domain import selectors, services
from common.domain.access import Operation, ProjectAccess, task_list_visible
from common.domain.models import Task
from common.infra.cache import CachedListMixin, page_ended, page_start


class TaskList(
    IdempotentPostMixin,
    ConditionalMixin,
    CreatedLocationMixin,
    CachedListMixin,
    generics.ListCreateAPIView,
):
    """The tasks of the caller's projects: a cached, filtered page of them, or a new one."""

    cache_resource = "tasks"
    location_view = "task-detail"
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    # The project comes with the body: its field and task_create check it (documents the 403).
    operations = {"GET": Operation.READ, "POST": Operation.WRITE_TASKS}

    def get_queryset(self):
        return task_list_visible(self.request.user, selectors.task_list())

    def render_list(self, request) -> bytes:
        paginator = cast(PageNumberPagination, self.paginator)
        queryset = self.filter_queryset(self.get_queryset())
        page = paginator.page_rows(queryset, request, count=self.count_rows, after=page_start())
        rows = selectors.task_rows(page)
        if rows:
            page_ended(rows[-1]["id"])
        return paginator.render_page(JSONRenderer().render(rows))

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.method == "POST":  # the body's project, read under its lock as validated
            actor = self.request.user
            context["project_for_write"] = partial(services.project_for_write, actor=actor)
        return context

    def create(self, request, *args, **kwargs):
        with transaction.atomic():  # the project's lock, from its validation to the write
            return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = services.task_create(
            actor=self.request.user, **serializer.validated_data
        )


class TaskDetail(ConditionalMixin, generics.RetrieveUpdateDestroyAPIView):
    """One task of the caller's projects; a move needs both projects' member role."""

    serializer_class = TaskSerializer
    permission_classes = [*generics.GenericAPIView.permission_classes, ProjectAccess]
    operations = {
        "GET": Operation.READ,
        "PUT": Operation.WRITE_TASKS,
        "PATCH": Operation.WRITE_TASKS,
        "DELETE": Operation.WRITE_TASKS,
    }

    def get_queryset(self):
        # Every task: whether the caller may see this one is ProjectAccess's role check, 404
        # for a non-member (one indexed lookup, cheaper than filtering the read by membership).
        return selectors.task_list()

    def get_object(self):
        if self.request.method in SAFE_METHODS:
            return super().get_object()
        # A write reads the task once, under its lock, with the caller's role (404, 403): the
        # service then writes it in the same transaction (update, destroy).
        body = self.request.data if self.request.method != "DELETE" else None
        try:
            self.locked_task = services.task_for_write(
                actor=self.request.user,
                task_id=self.kwargs["pk"],
                project_id=body.get("project") if isinstance(body, Mapping) else None,
            )
        except Task.DoesNotExist as exc:  # the answer of the generic views' lookup
            raise Http404("No Task matches the given query.") from exc
        return self.locked_task

    def get_serializer_context(self):
        context = super().get_serializer_context()
        task = getattr(self, "locked_task", None)
        if task is not None:  # a body's project, as locked with the task
            actor = self.request.user
            context["project_for_write"] = partial(
                services.project_for_write, actor=actor, task=task
            )
        return context

    def update(self, request, *args, **kwargs):
        with transaction.atomic():
            return super().update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            return super().destroy(request, *args, **kwargs)

    def perform_update(self, serializer):
        serializer.instance = services.task_update(
            actor=self.request.user,
            task=serializer.instance,
            if_match=self.if_match,
            **serializer.validated_data,
        )

    def perform_destroy(self, instance):
        services.task_delete(actor=self.request.user, task=instance, if_match=self.if_match)
