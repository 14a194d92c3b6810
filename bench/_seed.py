"""The data of the HTTP benches, made in a bench database by a Django child (bench._child).

`tasks` seeds users, projects and tasks deterministically (a fixed random seed, bulk inserts),
keeping a database that already holds exactly the asked-for counts; `ws_projects` makes
projects with members of their own through the services, for bench.ws_latency.
"""

import random
import uuid
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from rest_framework_simplejwt.tokens import AccessToken

from common.domain import services
from common.domain.events import EventType, envelope
from common.domain.models import Comment, Event, Membership, Project, SummaryReport, Task
from common.infra.cache import keys, store

TOKEN_USER = "bench-alice"
USER_PREFIX = "bench-user-"
BATCH = 2000
SEED = 20240917
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
WORDS = ("design", "review", "deploy", "fix", "write", "test", "plan", "sync", "ship", "audit")


def tasks(tasks: int, projects: int, users: int, pairs: bool = False) -> dict:
    """Seed unless seeded; a token of TOKEN_USER, the first task's and project's ids, the hit
    path's keys for that user's unfiltered task pages (`all`) and the first project's
    (`project`), optionally every (task id, project id)."""
    User = get_user_model()
    seeded = (
        Task.objects.count() == tasks
        and Project.objects.count() == projects
        and User.objects.filter(username__startswith=USER_PREFIX).count() == users
        and User.objects.filter(username=TOKEN_USER).exists()
        and Membership.objects.filter(user__username=TOKEN_USER).count() == projects
    )
    if not seeded:
        _seed(tasks, projects, users)
    user = User.objects.get(username=TOKEN_USER)
    rows = Task.objects.order_by("id").values_list("id", "project_id") if pairs else []
    project = Project.objects.order_by("id").values_list("id", flat=True).first()
    return {
        "task": Task.objects.order_by("id").values_list("id", flat=True).first(),
        "token": str(AccessToken.for_user(user)),
        "reseeded": not seeded,
        "project": project,
        "hit_keys": {"all": hit_keys(user.pk, None), "project": hit_keys(user.pk, str(project))},
        "pairs": list(rows),
    }


def hit_keys(user_id: int, project: str | None) -> list[str]:
    """The Redis keys the hit path reads before a /tasks/ page (of `?project=`): the one place
    the bench knows the list cache's key format (the store's prefix and generation over
    infra.cache's names)."""
    versions = [keys.version_name(name) for name in keys.page_versions("tasks", project)]
    redis_store = store.store()
    redis_store.ping()  # connected: the generation is known
    return [f"{redis_store.prefix}:{redis_store.generation}:{name}"
            for name in [*versions, keys.active_user_name(user_id)]]  # fmt: skip


def _seed(tasks: int, projects: int, users: int) -> None:
    User = get_user_model()
    with transaction.atomic():
        models = (Comment, Event, SummaryReport, Task, Project, User)
        tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        names = [TOKEN_USER, *(f"{USER_PREFIX}{n:03d}" for n in range(users))]
        User.objects.bulk_create([User(username=name) for name in names])
        people = list(User.objects.filter(username__startswith=USER_PREFIX).order_by("id"))
        Project.objects.bulk_create(
            Project(name=f"Project {n}", description="Bench", owner=people[n % users])
            for n in range(projects)
        )
        made = list(Project.objects.order_by("id"))
        _seed_memberships(made, User.objects.get(username=TOKEN_USER))
        rng = random.Random(SEED)
        for start in range(0, tasks, BATCH):
            numbers = range(start, min(tasks, start + BATCH))
            Task.objects.bulk_create(_task(n, made, people, rng) for n in numbers)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _seed_memberships(projects: list, reader) -> None:
    """Each project's owner is its owner member; TOKEN_USER, whose token the benches read and
    write with, is a member of every project."""
    Membership.objects.bulk_create(
        membership
        for project in projects
        for membership in (
            Membership(project=project, user_id=project.owner_id, role=Membership.Role.OWNER),
            Membership(project=project, user=reader, role=Membership.Role.MEMBER),
        )
    )


def _task(number: int, projects: list, users: list, rng: random.Random) -> Task:
    status = rng.choice(list(Task.Status))
    due = START + timedelta(hours=rng.randint(-24 * 30, 24 * 60), seconds=rng.randint(0, 59))
    completed = status == Task.Status.COMPLETED
    return Task(
        project=projects[number % len(projects)],
        title=" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))).capitalize(),
        description=" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30))),
        status=status,
        assignee=rng.choice(users) if rng.random() < 0.8 else None,
        due_date=due,
        comment_count=rng.randint(0, 12),
        reminder_sent_at=due - timedelta(hours=24) if rng.random() < 0.3 else None,
        completed_at=due - timedelta(minutes=rng.randint(1, 600)) if completed else None,
    )


def ws_projects(projects: int, users_per_project: int) -> dict:
    """Fresh projects of a writer (their owner, who holds no socket), each with viewers of its
    own who are members of no other project: for each project its id and its viewers' tokens,
    the writer's token, and a task.created event as sent."""
    User, run = get_user_model(), uuid.uuid4().hex[:8]
    writer = User.objects.create_user(f"bench-ws-writer-{run}")
    made, tokens = [], []
    for number in range(projects):
        project = services.project_create(actor=writer, name=f"ws_latency {number} {run}")
        viewers = User.objects.bulk_create(
            User(username=f"bench-ws-{run}-{number}-{n}") for n in range(users_per_project)
        )
        Membership.objects.bulk_create(
            Membership(project=project, user=user, role=Membership.Role.VIEWER) for user in viewers
        )
        made.append(project.id)
        tokens.append([str(AccessToken.for_user(user)) for user in viewers])
    project = Project.objects.get(pk=made[0])
    due = datetime(2030, 1, 1, tzinfo=UTC)
    services.task_create(actor=writer, project=project, title="ws_latency 0", due_date=due)
    event = Event.objects.get(project_id=project.id, type=EventType.TASK_CREATED)
    return {"projects": made, "tokens": tokens, "writer": str(AccessToken.for_user(writer)),
            "event": envelope(event)}  # fmt: skip
