"""Test data: one factory per model, the only place tests build rows."""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from common.models import Comment, Project, SummaryReport, Task


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("pass-word-1")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    owner = factory.SubFactory(UserFactory)


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    project = factory.SubFactory(ProjectFactory)
    title = factory.Sequence(lambda n: f"Task {n}")
    due_date = factory.LazyFunction(lambda: timezone.now() + timedelta(days=3))


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment

    task = factory.SubFactory(TaskFactory)
    author = "alice"
    content = factory.Sequence(lambda n: f"Comment {n}")


class SummaryReportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SummaryReport

    project = factory.SubFactory(ProjectFactory)
    date = factory.LazyFunction(lambda: timezone.localdate())
    generated_at = factory.LazyFunction(timezone.now)
