"""The one text form of a moment: RFC 3339 in UTC with `Z`, as every answer and event writes it.

In Python (`rfc3339_utc`), and the same text written by PostgreSQL (`RFC3339UTC`), for list
pages whose rows the database should not hand to Python as datetimes only to be written out
again; a test holds the two equal.
"""

from datetime import UTC, datetime

from django.db import NotSupportedError
from django.db.models import CharField, Func


def rfc3339_utc(moment: datetime) -> str:
    """`2030-01-02T03:04:05Z`, or `...05.000007Z`: microseconds only when there are any.

    `moment` is aware; it is written in UTC whatever its own offset.
    """
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


class RFC3339UTC(Func):
    """A timestamptz expression as rfc3339_utc writes it (null stays null); PostgreSQL only."""

    output_field = CharField()
    arity = 1

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"RFC3339UTC is not implemented on {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        utc = f"(({sql}) AT TIME ZONE 'UTC')"
        whole = f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
        fraction = f"""to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
        case = f"CASE WHEN date_trunc('second', {utc}) = {utc} THEN {whole} ELSE {fraction} END"
        return case, (*params,) * 4
