"""Part 2 of bench.list_cache, in a Django child: the list view's JSON beside PostgreSQL's.

Candidate: what the list view does on a miss, in-process and without HTTP
(`selectors.task_rows_json(selectors.task_list())`). Reference: one SQL statement in which
PostgreSQL builds the same JSON (json_agg of json_build_object, the assignee's username joined,
timestamps in the serializer's UTC `Z` format). Both on one connection, alternating, checked
equal (as parsed JSON) first. Sizes: `all` tasks, and `page` (the first 200 by id with the
count). With `breakdown`, the serializer path is also timed step by step, and profiled.
"""

import json
from functools import partial

import psycopg
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.renderers import JSONRenderer

from bench import median, taking_turns, timed
from bench._child import profiled
from common.api.serializers import TaskSerializer
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


def postgres_json(size: str) -> bytes:
    table = f'"{Task._meta.db_table}"'
    if size == "all":
        query = f"SELECT ({_array_sql(table)})::text"
    else:
        first = f"(SELECT * FROM {table} ORDER BY id LIMIT {PAGE})"
        count = f"(SELECT count(*) FROM {table})"
        query = (
            f"SELECT json_build_object('count', {count}, 'results', ({_array_sql(first)}))::text"
        )
    with connection.cursor() as cursor:
        cursor.execute(query)
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


def _steps(runs: int) -> dict[str, float]:
    """Median ms of each step of the serializer path over all tasks, unprofiled."""
    sql, params = selectors.task_list().query.sql_with_params()
    db = connection.settings_dict
    plain = psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"])
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        with connection.cursor() as cursor:
            samples.setdefault("rows", []).append(
                _ms(lambda: cursor.execute(sql, params).fetchall())
            )
        samples.setdefault("plain", []).append(_ms(lambda: plain.execute(sql, params).fetchall()))
        ms, tasks = timed(lambda: list(selectors.task_list()))
        samples.setdefault("orm", []).append(ms)
        ms, data = timed(lambda rows: TaskSerializer(rows, many=True).data, tasks)
        samples.setdefault("data", []).append(ms)
        samples.setdefault("render", []).append(_ms(JSONRenderer().render, data))
    plain.close()
    m = {name: median(values) for name, values in samples.items()}
    return {
        "SQL rows via Django's driver (timestamps parsed in Python)": m["rows"],
        "the same rows on a plain psycopg connection (C loaders)": m["plain"],
        "ORM model instances (ORM query - rows)": m["orm"] - m["rows"],
        "serializer .data": m["data"],
        "JSONRenderer": m["render"],
    }


def _profile(top: int) -> list[list]:
    """One candidate run over all tasks under cProfile: top functions by own time."""
    return [list(row) for row in profiled(partial(django_json, "all"))[:top]]


def measure(runs: int, breakdown: bool) -> dict:
    result = {"tasks": Task.objects.count(), "all": _measure("all", runs)}
    result["page"] = _measure("page", runs)
    if breakdown:
        result["steps"], result["profile"] = _steps(runs), _profile(15)
    return result
