"""Prepares the bench database of bench.list_cache: migrated, seeded, and a token to call it with.

Run in the servers' environment (production settings on the bench database), as
`python -m bench._list_cache_seed --tasks N --projects N --users N`; prints one JSON line:
{"token", "tasks", "projects", "reseeded"}. A database that already holds exactly the asked-for
data (same counts) is kept; otherwise every table the lists read is emptied and seeded again,
deterministically (a fixed random seed), with bulk inserts that bypass the cache signals.
"""

import argparse
import json
import random
import sys
from datetime import UTC, datetime, timedelta

import django

TOKEN_USER = "bench-alice"
USER_PREFIX = "bench-user-"
BATCH = 2000
SEED = 20240917
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
WORDS = [
    "design",
    "review",
    "deploy",
    "fix",
    "write",
    "test",
    "plan",
    "sync",
    "update",
    "migrate",
    "draft",
    "audit",
    "refactor",
    "ship",
    "document",
    "clean",
    "measure",
    "profile",
    "schedule",
    "triage",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench._list_cache_seed")
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--projects", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    return parser.parse_args(argv)


def is_seeded(tasks: int, projects: int, users: int) -> bool:
    from django.contrib.auth import get_user_model

    from common.models import Project, Task

    bench_users = get_user_model().objects.filter(username__startswith=USER_PREFIX).count()
    return (
        Task.objects.count() == tasks
        and Project.objects.count() == projects
        and bench_users == users
        and get_user_model().objects.filter(username=TOKEN_USER).exists()
    )


def empty_tables() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from common.models import Comment, Event, Project, SummaryReport, Task

    models = (Comment, Event, SummaryReport, Task, Project, get_user_model())
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def create_users(count: int) -> list:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    names = [TOKEN_USER, *(f"{USER_PREFIX}{n:03d}" for n in range(count))]
    user_model.objects.bulk_create([user_model(username=name) for name in names])
    return list(user_model.objects.filter(username__startswith=USER_PREFIX).order_by("id"))


def create_projects(count: int, owners: list) -> list:
    from common.models import Project

    projects = [
        Project(
            name=f"Project {n}", description=f"Bench project {n}", owner=owners[n % len(owners)]
        )
        for n in range(count)
    ]
    Project.objects.bulk_create(projects)
    return list(Project.objects.order_by("id"))


def make_task(number: int, projects: list, users: list, rng: random.Random):
    from common.models import Task

    status = rng.choice(list(Task.Status))
    due = START + timedelta(hours=rng.randint(-24 * 30, 24 * 60), seconds=rng.randint(0, 59))
    title_words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
    return Task(
        project=projects[number % len(projects)],
        title=f"{title_words.capitalize()} #{number}",
        description=" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30))),
        status=status,
        assignee=rng.choice(users) if rng.random() < 0.8 else None,
        due_date=due,
        comment_count=rng.randint(0, 12),
        reminder_sent_at=due - timedelta(hours=24) if rng.random() < 0.3 else None,
        completed_at=due - timedelta(minutes=rng.randint(1, 600))
        if status == Task.Status.COMPLETED
        else None,
    )


def create_tasks(count: int, projects: list, users: list) -> None:
    from common.models import Task

    rng = random.Random(SEED)
    for start in range(0, count, BATCH):
        batch = [
            make_task(n, projects, users, rng) for n in range(start, min(count, start + BATCH))
        ]
        Task.objects.bulk_create(batch)


def seed(tasks: int, projects: int, users: int) -> None:
    from django.db import connection, transaction

    with transaction.atomic():
        empty_tables()
        bench_users = create_users(users)
        created = create_projects(projects, bench_users)
        create_tasks(tasks, created, bench_users)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def access_token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    return str(AccessToken.for_user(get_user_model().objects.get(username=TOKEN_USER)))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    reseeded = not is_seeded(args.tasks, args.projects, args.users)
    if reseeded:
        seed(args.tasks, args.projects, args.users)
    result = {
        "token": access_token(),
        "tasks": args.tasks,
        "projects": args.projects,
        "reseeded": reseeded,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
