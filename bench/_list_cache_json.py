"""Part 2 of bench.list_cache, in a Django child: the list view's JSON beside PostgreSQL's.

Candidate: what the list view does on a miss, in-process and without HTTP
(`selectors.task_rows_json(selectors.task_list())`). Reference: one SQL statement in which
PostgreSQL builds the same JSON (json_agg of json_build_object, the assignee's username joined,
timestamps in the serializer's UTC `Z` format). Both on one connection, alternating, checked
equal (as parsed JSON) first. Sizes: `all` tasks, and `page` (the first 200 by id with the
count). With `breakdown`, the candidate over all tasks is also profiled.
"""

import json
from functools import partial

from django.contrib.auth import get_user_model
from django.db import connection

from bench import taking_turns, timed
from bench._child import profiled
from common.domain import selectors
from common.domain.models import Task

PAGE = 200
FIELDS = {"id": "t.id", "project": "t.project_id", "title": "t.title"}
FIELDS |= {"description": "t.description", "status": "t.status", "assignee": "u.username"}
FIELDS |= {"due_date": None, "comment_count": "t.comment_count", "reminder_sent_at": None}
FIELDS |= {"completed_at": None, "created_at": None, "updated_at": None}  # None: a timestamp


def _timestamp(column: str) -> str:
    """A timestamptz as UTCDateTimeField writes it (`...SS[.ffffff]Z`, or null)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    whole, micro = (f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS{f}"Z"')""" for f in ("", ".US"))
    return f"CASE WHEN date_trunc('second', {column}) = {column} THEN {whole} ELSE {micro} END"


def _array_sql(source: str) -> str:
    users = get_user_model()._meta.db_table
    pairs = ", ".join(f"'{name}', {sql or _timestamp('t.' + name)}" for name, sql in FIELDS.items())
    return (
        f"SELECT coalesce(json_agg(json_build_object({pairs}) ORDER BY t.id), '[]'::json) "
        f'FROM {source} t LEFT JOIN "{users}" u ON u.id = t.assignee_id'
    )


def reference_sql(size: str = "all") -> str:
    """The statement in which PostgreSQL builds the JSON of `size` (also for bench.list_cache,
    which times it beside its HTTP walk)."""
    table = f'"{Task._meta.db_table}"'
    if size == "all":
        return f"SELECT ({_array_sql(table)})::text"
    first = f"(SELECT * FROM {table} ORDER BY id LIMIT {PAGE})"
    count = f"(SELECT count(*) FROM {table})"
    return f"SELECT json_build_object('count', {count}, 'results', ({_array_sql(first)}))::text"


def postgres_json(size: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(reference_sql(size))
        return cursor.fetchone()[0].encode()


def django_json(size: str) -> bytes:
    tasks = selectors.task_list()
    if size == "all":
        return selectors.task_rows_json(tasks)
    rows = selectors.task_rows_json(tasks[:PAGE])
    return b'{"count":%d,"results":' % tasks.count() + rows + b"}"


def _ms(build, *args) -> float:
    return timed(build, *args)[0]


def _measure(size: str, runs: int) -> dict:
    ours = django_json(size)
    if json.loads(ours) != json.loads(postgres_json(size)):
        raise AssertionError(f"Django and PostgreSQL JSON differ ({size})")
    builds = {"django_ms": django_json, "postgres_ms": postgres_json}
    measures = {name: partial(_ms, build, size) for name, build in builds.items()}
    return {"bytes": len(ours), **taking_turns(measures, runs)}


def _profile(top: int) -> list[list]:
    """One candidate run over all tasks under cProfile: top functions by own time."""
    return [list(row) for row in profiled(partial(django_json, "all"))[:top]]


def measure(runs: int, breakdown: bool) -> dict:
    result = {"tasks": Task.objects.count(), "all": _measure("all", runs)}
    result["page"] = _measure("page", runs)
    if breakdown:
        result["profile"] = _profile(15)
    return result
