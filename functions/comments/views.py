"""A task's comments over HTTP: validate, make one service call, answer."""

from django.shortcuts import get_object_or_404
from rest_framework import generics

from common import selectors, services
from common.models import Comment
from common.serializers import CommentSerializer


class CommentList(generics.ListCreateAPIView):
    """A task's comments, oldest first; 404 when the task does not exist."""

    serializer_class = CommentSerializer
    queryset = Comment.objects.none()  # names the model for the schema; rows come from get_queryset

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticate first: 401 comes before 404
        self.task = get_object_or_404(selectors.task_list(), pk=kwargs["task_pk"])

    def get_queryset(self):
        return selectors.comment_list(task=self.task)

    def perform_create(self, serializer):
        serializer.instance = services.comment_create(
            actor=self.request.user, task=self.task, **serializer.validated_data
        )
