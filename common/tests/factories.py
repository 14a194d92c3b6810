"""Test data: one factory per model, the only place tests build rows."""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from common.domain.models import Comment, Membership, Project, SummaryReport, Task


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
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Project {n}")
    owner = factory.SubFactory(UserFactory)

    @factory.post_generation
    def members(project, create, extracted, **kwargs):
        """The owner is the owner member; `members=[user, (user, role), ...]` adds others
        (role default `member`)."""
        if not create:
            return
        if project.owner is not None:
            Membership.objects.create(project=project, user=project.owner, role="owner")
        for entry in extracted or ():
            user, role = entry if isinstance(entry, tuple) else (entry, "member")
            if user != project.owner:
                Membership.objects.create(project=project, user=user, role=role)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.MEMBER


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    title = factory.Sequence(lambda n: f"Task {n}")
    due_date = factory.LazyFunction(lambda: timezone.now() + timedelta(days=3))

    @factory.post_generation
    def assignee_is_member(task, create, extracted, **kwargs):
        """Tasks go only to members (role member or above): an assignee given is made one."""
        if create and task.assignee_id is not None:
            Membership.objects.get_or_create(
                project_id=task.project_id, user_id=task.assignee_id, defaults={"role": "member"}
            )


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
