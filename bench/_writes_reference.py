"""The reference of bench.writes: plain DRF generic views writing a task, as the peers do.

`uvicorn bench._writes_reference:application`: the same settings, middleware, JWT
authentication, TaskSerializer and database as the tasks function, served by Django's own ASGI
handler, and the write is the serializer's own save(): no service, no lock, no event, no cache.
"""
# Django must be set up before DRF and the models are imported, hence the late imports.
# ruff: noqa: E402

import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.infra.settings")
django.setup(set_prefix=False)
settings.ROOT_URLCONF = __name__

from django.core.asgi import get_asgi_application
from django.urls import include, path
from rest_framework import generics

from common.api.serializers import TaskSerializer
from common.domain.models import Task


class TaskCreate(generics.CreateAPIView):
    queryset = Task.objects.all()
    serializer_class = TaskSerializer


class TaskDetail(generics.RetrieveUpdateAPIView):
    queryset = Task.objects.select_related("assignee")
    serializer_class = TaskSerializer


urlpatterns = [
    path("tasks/", TaskCreate.as_view()),
    path("tasks/<int:pk>/", TaskDetail.as_view()),
    path("", include("common.api.urls")),
]

application = get_asgi_application()
