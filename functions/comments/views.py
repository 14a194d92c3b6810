"""A task's comments over HTTP: validate, make one service call, answer."""

from django.shortcuts import get_object_or_404
from rest_framework import generics

from common.api.idempotency import IdempotentPostMixin
from common.api.serializers import CommentSerializer
from common.domain import selectors, services
from common.domain.access import Operation, ProjectAccess, task_list_visible
from common.domain.models import Comment


class CommentList(IdempotentPostMixin, generics.ListCreateAPIView):
    """A task's comments, oldest first; 404 when the caller cannot see the task."""

    serializer_class = CommentSerializer
    queryset = Comment.objects.none()  # names the model for the schema; rows come from get_queryset
    permission_classes = [*generics.GenericAPIView.permission_classes, ProjectAccess]
    operations = {"GET": Operation.READ, "POST": Operation.WRITE_TASKS}

    def access_project_id(self) -> int:
        # Permissions run after authentication: 401 comes before 404.
        tasks = task_list_visible(self.request.user, selectors.task_list())
        self.task = get_object_or_404(tasks, pk=self.kwargs["task_pk"])
        return self.task.project_id

    def get_queryset(self):
        return selectors.comment_list(task=self.task)

    def perform_create(self, serializer):
        serializer.instance = services.comment_create(
            actor=self.request.user,
            task=self.task,
            author=self.request.user.get_username(),
            **serializer.validated_data,
        )
