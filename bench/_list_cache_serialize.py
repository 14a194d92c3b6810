"""Part 2 of bench.list_cache, in a process of its own: Django's JSON of the task list beside
PostgreSQL's.

Run in the servers' environment as `python -m bench._list_cache_serialize --runs N --goal G
[--profile] [--top K]`; prints one JSON line. Candidate: the view's code path on a miss,
in-process and without HTTP: `selectors.task_rows_json(selectors.task_list())`, the rows
rendered by PostgreSQL in the view's own query (the serializer renders them on other
databases; the step-by-step breakdown below times that serializer path). Reference: one SQL
statement in which PostgreSQL builds the same JSON (json_agg of json_build_object, the
assignee's username joined, timestamps in the serializer's UTC `Z` format), fetched as text
and encoded to bytes. Both run on the same connection, alternating; the two documents are
checked equal (as parsed JSON) before timing.

Sizes: `all` (every task) and `page` (the first 200 by id, with the total count, as a page of
/tasks/?page_size=200 holds). When the `all` ratio misses the goal (or with --profile), one
more Django run goes under cProfile and the top functions are reported, and each step of the
Django path is timed on its own, unprofiled.
"""

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import django

PAGE = 200
REPO = Path(__file__).resolve().parent.parent


def timestamp_sql(column: str) -> str:
    """SQL for a timestamptz column as UTCDateTimeField writes it (`...SS[.ffffff]Z`, or null)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    whole = f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
    micro = f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    return f"CASE WHEN date_trunc('second', {column}) = {column} THEN {whole} ELSE {micro} END"


def tasks_json_sql(source: str) -> str:
    """SQL for the JSON array of the tasks of `source` (a table or subquery aliased t), by id."""
    from django.contrib.auth import get_user_model

    users = get_user_model()._meta.db_table
    fields = {
        "id": "t.id",
        "project": "t.project_id",
        "title": "t.title",
        "description": "t.description",
        "status": "t.status",
        "assignee": "u.username",
        "due_date": timestamp_sql("t.due_date"),
        "comment_count": "t.comment_count",
        "reminder_sent_at": timestamp_sql("t.reminder_sent_at"),
        "completed_at": timestamp_sql("t.completed_at"),
        "created_at": timestamp_sql("t.created_at"),
        "updated_at": timestamp_sql("t.updated_at"),
    }
    pairs = ", ".join(f"'{name}', {expression}" for name, expression in fields.items())
    return (
        f"SELECT coalesce(json_agg(json_build_object({pairs}) ORDER BY t.id), '[]'::json) "
        f'FROM {source} t LEFT JOIN "{users}" u ON u.id = t.assignee_id'
    )


def reference_sql(size: str) -> str:
    from common.models import Task

    table = f'"{Task._meta.db_table}"'
    if size == "all":
        return f"SELECT ({tasks_json_sql(table)})::text"
    first = f"(SELECT * FROM {table} ORDER BY id LIMIT {PAGE})"
    return (
        f"SELECT json_build_object('count', (SELECT count(*) FROM {table}), "
        f"'results', ({tasks_json_sql(first)}))::text"
    )


def django_json(size: str) -> bytes:
    """The candidate: what the list view does on a miss (selectors.task_rows_json on PostgreSQL)."""
    from common import selectors

    tasks = selectors.task_list()
    if size == "all":
        return selectors.task_rows_json(tasks)
    rows = selectors.task_rows_json(tasks[:PAGE])
    return b'{"count":%d,"results":' % tasks.count() + rows + b"}"


def postgres_json(size: str) -> bytes:
    """The reference: PostgreSQL builds the document; fetched as text, encoded to bytes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(reference_sql(size))
        return cursor.fetchone()[0].encode()


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def timed(build: Callable[[str], bytes], size: str) -> float:
    started = time.perf_counter()
    build(size)
    return ms_since(started)


def check_equal(size: str) -> int:
    """Both documents, parsed, are equal; the candidate's size in bytes."""
    ours, theirs = django_json(size), postgres_json(size)
    if json.loads(ours) != json.loads(theirs):
        raise AssertionError(f"Django and PostgreSQL JSON differ ({size})")
    return len(ours)


def measure(size: str, runs: int) -> dict:
    """Each one's ms over `runs` alternating pairs, after check_equal's uncounted run of each."""
    nbytes = check_equal(size)
    ours: list[float] = []
    theirs: list[float] = []
    for run in range(runs):
        pair = ((ours, django_json), (theirs, postgres_json))
        for samples, build in pair if run % 2 == 0 else reversed(pair):
            samples.append(timed(build, size))
    return {
        "bytes": nbytes,
        "django_ms": ours,
        "postgres_ms": theirs,
        "ratio": statistics.median(ours) / statistics.median(theirs),
    }


def short_name(key: tuple[str, int, str]) -> str:
    """`package/module.py:line(function)`, without the install prefix; builtins by name."""
    path, line, function = key
    if not line:
        return function
    for marker in ("site-packages/", "/python3.11/", f"{REPO}/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line}({function})"


def profile(top: int) -> dict:
    """One Django `all` run under cProfile: its top functions by own and by cumulative time."""
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    django_json("all")
    profiler.disable()
    wall_ms = ms_since(started)
    stats = pstats.Stats(profiler).stats  # key -> (primitive calls, calls, own s, cum s, ...)
    rows = [
        [short_name(key), calls, own * 1000, cumulative * 1000]
        for key, (_, calls, own, cumulative, _) in stats.items()
    ]
    return {
        "wall_ms": wall_ms,
        "total_own_ms": sum(row[2] for row in rows),
        "by_own": sorted(rows, key=lambda row: row[2], reverse=True)[:top],
        "by_cumulative": sorted(rows, key=lambda row: row[3], reverse=True)[:top],
    }


def phases(runs: int) -> dict[str, float]:
    """Median ms of each step of the Django `all` path, unprofiled: the ORM's own SQL fetched as
    plain rows (database and driver, timestamps parsed), what the ORM adds to build the model
    instances (its whole query minus the plain rows), the serializer's `.data` on those
    instances, and the renderer on that data."""
    from django.db import connection
    from rest_framework.renderers import JSONRenderer

    from common import selectors
    from common.serializers import TaskSerializer

    sql, params = selectors.task_list().query.sql_with_params()

    def rows() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()

    samples: dict[str, list[float]] = {"rows": [], "orm": [], "data": [], "render": []}
    for _ in range(runs):
        started = time.perf_counter()
        rows()
        samples["rows"].append(ms_since(started))
        started = time.perf_counter()
        tasks = list(selectors.task_list())
        samples["orm"].append(ms_since(started))
        started = time.perf_counter()
        data = TaskSerializer(tasks, many=True).data
        samples["data"].append(ms_since(started))
        started = time.perf_counter()
        JSONRenderer().render(data)
        samples["render"].append(ms_since(started))
    median = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "SQL rows via the driver (timestamps parsed)": median["rows"],
        "ORM model instances (ORM query - rows)": median["orm"] - median["rows"],
        "serializer .data": median["data"],
        "JSONRenderer": median["render"],
    }


def plain_rows_ms(runs: int) -> float:
    """Median ms of the ORM's SQL fetched on a plain psycopg connection: psycopg's own (C)
    loaders, not the pure-Python timestamptz loader Django registers on its connections."""
    import psycopg
    from django.db import connection

    from common import selectors

    sql, params = selectors.task_list().query.sql_with_params()
    settings = connection.settings_dict
    samples = []
    with psycopg.connect(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=settings["PORT"]
    ) as plain:
        for _ in range(runs + 1):
            started = time.perf_counter()
            plain.execute(sql, params).fetchall()
            samples.append(ms_since(started))
    return statistics.median(samples[1:])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench._list_cache_serialize")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--goal", type=float, default=2.5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=15)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    django.setup()
    from common.models import Task

    result = {
        "tasks": Task.objects.count(),
        "all": measure("all", args.runs),
        "page": measure("page", args.runs),
    }
    if args.profile or result["all"]["ratio"] > args.goal:
        result["profile"] = profile(args.top)
        result["phases"] = phases(args.runs)
        result["plain_rows_ms"] = plain_rows_ms(args.runs)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
