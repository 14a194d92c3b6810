"""The one text form of a moment: RFC 3339, UTC, `Z`, microseconds only when there are any; the
same text from PostgreSQL."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db.models import DateTimeField, Value

from common.api.timestamps import RFC3339UTC, rfc3339_utc
from common.domain.models import Task
from common.tests.factories import TaskFactory


def test_a_whole_second_is_written_without_a_fraction():
    assert rfc3339_utc(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2030-01-02T03:04:05Z"


def test_microseconds_are_written_when_there_are_any():
    moment = datetime(999, 1, 1, 0, 0, 0, 7, tzinfo=UTC)
    assert rfc3339_utc(moment) == "0999-01-01T00:00:00.000007Z"


def test_another_offset_is_written_in_utc():
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339_utc(datetime(2030, 1, 1, 1, 30, tzinfo=plus_two)) == "2029-12-31T23:30:00Z"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(999, 1, 1, 0, 0, 0, 7, tzinfo=UTC),
        datetime(2030, 1, 1, 1, 30, 0, 500000, tzinfo=timezone(timedelta(hours=2))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_postgresql_writes_a_moment_as_python_does(moment):
    written = Task.objects.annotate(at=Value(moment, DateTimeField())).values_list(
        RFC3339UTC("at"), flat=True
    )
    TaskFactory()

    assert list(written) == [rfc3339_utc(moment)]


@pytest.mark.django_db
def test_postgresql_writes_null_as_null():
    TaskFactory(completed_at=None)

    assert list(Task.objects.values_list(RFC3339UTC("completed_at"), flat=True)) == [None]
