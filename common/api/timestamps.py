"""The one text form of a moment: RFC 3339 in UTC with `Z`, as every answer and event writes it."""

from datetime import UTC, datetime


def rfc3339_utc(moment: datetime) -> str:
    """`2030-01-02T03:04:05Z`, or `...05.000007Z`: microseconds only when there are any.

    `moment` is aware; it is written in UTC whatever its own offset.
    """
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"
