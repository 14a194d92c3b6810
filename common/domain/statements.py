"""A few hot querysets' SQL, compiled once per database rather than on every call.

Building a queryset's SQL costs more than running it for the one-row statements every write
runs (the locks, the caller's role). Each is still written as a queryset, a function of its
values; `compiled` renders it once with markers standing for the values, and afterwards only
puts the values in their places.
"""

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.db.models import QuerySet

_sql: dict[tuple[str, Callable], tuple[str, list[int]]] = {}
_MARKER = 987_654_321  # stands for the values while the SQL is compiled: MARKER + 0, 1, ...


def compiled(query: Callable[..., QuerySet], *values: Any) -> tuple[str, list[Any]]:
    """`query(*values)`'s SQL and parameters, the SQL compiled once per database."""
    key = (connection.alias, query)
    if key not in _sql:
        markers = [_MARKER + number for number in range(len(values))]
        sql, params = query(*markers).query.sql_with_params()
        if sorted(params) != markers:
            raise ValueError(f"{query.__name__} must use each parameter once: {params}")
        _sql[key] = sql, [param - _MARKER for param in params]
    sql, order = _sql[key]
    return sql, [values[index] for index in order]


def fetch_one(query: Callable[..., QuerySet], *values: Any) -> tuple | None:
    """The first row of `query(*values)`, through its compiled SQL."""
    with connection.cursor() as cursor:
        cursor.execute(*compiled(query, *values))
        return cursor.fetchone()
