"""The one text form of a moment: RFC 3339, UTC, `Z`, microseconds only when there are any."""

from datetime import UTC, datetime, timedelta, timezone

from common.api.timestamps import rfc3339_utc


def test_a_whole_second_is_written_without_a_fraction():
    assert rfc3339_utc(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2030-01-02T03:04:05Z"


def test_microseconds_are_written_when_there_are_any():
    moment = datetime(999, 1, 1, 0, 0, 0, 7, tzinfo=UTC)
    assert rfc3339_utc(moment) == "0999-01-01T00:00:00.000007Z"


def test_another_offset_is_written_in_utc():
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339_utc(datetime(2030, 1, 1, 1, 30, tzinfo=plus_two)) == "2029-12-31T23:30:00Z"
