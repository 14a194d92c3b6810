"""bench.jobs's list growth, the Django side: the uncached task list page as the table grows.

The table grows in place (INSERT ... SELECT generate_series, then VACUUM ANALYZE) to each size,
its tasks spread evenly over PROJECTS projects (task n in project 1 + n % PROJECTS). The pages,
each built by the list view's own uncached path (TaskList.render_list: the visible queryset,
filters, COUNT, the page's rows and their JSON; no cache, no HTTP), as:
  project page 1     GET /tasks/?project=1 by its owner
  project last page  the same, ?page=<last>
  user page 1        GET /tasks/ by a member of MEMBER_OF projects (1..20), unfiltered
Each is timed `runs` times after `warmup` uncounted ones; the statements of one more run are
recorded, so the COUNT's and the page query's shares are seen.
"""

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from rest_framework.test import APIRequestFactory, force_authenticate

from bench import median, timed
from bench._child import recording
from common.domain.models import Membership, Project, Task

COUNT_SQL = 'SELECT COUNT(*) AS "__count" FROM "common_task"'
ROWS_SQL = 'SELECT "common_task"."id" AS "id"'
PROJECTS = 1000
MEMBER_OF = 20
OWNER = "growth-owner"
MEMBER = "growth-member"

TASKS_SQL = """
    INSERT INTO common_task (id, title, description, status, due_date, comment_count,
                             reminder_sent_at, completed_at, created_at, updated_at,
                             assignee_id, project_id)
    SELECT n, 'Task ' || n, 'Growth bench task ' || n || ': what to do and by when.',
           (ARRAY['pending', 'in_progress', 'completed'])[1 + n %% 3],
           '2030-01-01'::timestamptz + make_interval(secs => n * 37 %% 31536000),
           n %% 5, NULL, NULL, '2029-01-01'::timestamptz, '2029-01-02'::timestamptz,
           NULL, 1 + n %% %(projects)s
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n
"""


def _setup() -> None:
    """The projects, their owner and the member of MEMBER_OF of them, once."""
    users = get_user_model()
    if Project.objects.count() == PROJECTS:
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE common_task, common_membership, common_project RESTART IDENTITY CASCADE"
            )
        owner, _ = users.objects.get_or_create(username=OWNER, defaults={"email": "o@example.com"})
        member, _ = users.objects.get_or_create(
            username=MEMBER, defaults={"email": "m@example.com"}
        )
        projects = Project.objects.bulk_create(
            Project(id=n, name=f"Project {n}", description="", owner=owner)
            for n in range(1, PROJECTS + 1)
        )
        memberships = [Membership(project=p, user=owner, role="owner") for p in projects]
        memberships += [Membership(project=p, user=member, role="member") for p in projects[:20]]
        Membership.objects.bulk_create(memberships)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('common_project', 'id'), %s)", [PROJECTS]
            )


def grow(tasks: int) -> dict:
    """Tasks 1..`tasks` in the table (added to what is there), analyzed: {"tasks", "seconds"}."""
    _setup()
    have = Task.objects.count()
    if have > tasks:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE common_task CASCADE")
        have = 0
    ms = 0.0
    if have < tasks:
        params = {"first": have + 1, "last": tasks, "projects": PROJECTS}

        def insert() -> None:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(TASKS_SQL, params)
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence('common_task', 'id'), %s)", [tasks]
                )

        ms, _ = timed(insert)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE common_task")
    return {"tasks": Task.objects.count(), "seconds": ms / 1000}


def _page(username: str, query: dict) -> bytes:
    from functions.tasks.views import TaskList

    user = get_user_model().objects.get(username=username)
    django_request = APIRequestFactory().get("/tasks/", query, HTTP_HOST="127.0.0.1")
    force_authenticate(django_request, user=user)
    view = TaskList()
    view.setup(django_request)
    request = view.initialize_request(django_request)
    view.request, view.format_kwarg = request, None
    view.initial(request)  # authentication and permissions, as dispatch would
    return view.render_list(request)


def pages(runs: int, warmup: int) -> dict:
    """Every page's ms (median of `runs`) and one run's statements: {page: {...}}."""
    import json

    per_project = Task.objects.filter(project_id=1).count()
    last = max(1, -(-per_project // 50))
    cases = {
        "project page 1": (OWNER, {"project": "1"}),
        "project last page": (OWNER, {"project": "1", "page": str(last)}),
        "user page 1": (MEMBER, {}),
    }
    result = {}
    for name, (username, query) in cases.items():
        for _ in range(warmup):
            _page(username, query)
        samples, count_ms, rows_ms = [], [], []
        for _ in range(runs):
            with recording() as statements:
                ms, page = timed(_page, username, query)
            samples.append(ms)
            count_ms.append(sum(ms for sql, ms in statements if sql.startswith(COUNT_SQL)))
            rows_ms.append(sum(ms for sql, ms in statements if sql.startswith(ROWS_SQL)))
        body = json.loads(page)
        result[name] = {
            "ms": median(samples),
            "count_ms": median(count_ms),  # the page's COUNT(*), in execute
            "rows_ms": median(rows_ms),  # the page's rows query, in execute
            "count": body["count"],
            "rows": len(body["results"]),
            "statements": [[sql, ms] for sql, ms in statements],
        }
    return result
