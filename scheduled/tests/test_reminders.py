"""send_due_reminders against PostgreSQL, with SES mocked by moto."""

import threading
from datetime import timedelta
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.domain import services
from common.domain.models import Membership, Reminder, Task
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory
from scheduled import reminders
from scheduled.reminders import Claim, send_due_reminders

pytestmark = pytest.mark.django_db(transaction=True)


def due_in(hours: float, **fields) -> Task:
    return TaskFactory(due_date=timezone.now() + timedelta(hours=hours), **fields)


def test_each_open_task_due_within_a_day_gets_one_email_to_its_assignee(ses):
    ann = UserFactory(email="ann@example.com")
    task = due_in(3, assignee=ann, title="Ship it")

    result = send_due_reminders()

    assert result == {"claimed": 1, "sent": 1}
    [message] = ses.messages()
    assert message["To"] == "ann@example.com"
    assert "Ship it" in message["Subject"]
    assert f"Task #{task.id}" in message.get_content()
    task.refresh_from_db()
    assert task.reminder_sent_at is not None
    reminder = Reminder.objects.get()
    assert (reminder.status, reminder.recipient, reminder.due_date) == (
        "sent",
        "ann@example.com",
        task.due_date,
    )
    assert reminder.message_id


def test_without_an_assignee_the_project_owner_is_reminded(ses):
    owner = UserFactory(email="owner@example.com")
    due_in(2, project=ProjectFactory(owner=owner))

    send_due_reminders()

    assert ses.recipients() == ["owner@example.com"]


def test_who_gets_no_email(ses, caplog):
    due_in(2, status="completed", assignee=UserFactory(email="done@example.com"))
    due_in(72, assignee=UserFactory(email="later@example.com"))
    due_in(-1, assignee=UserFactory(email="overdue@example.com"))
    nobody = due_in(2, project=ProjectFactory(owner=UserFactory(email="")))

    result = send_due_reminders()

    assert ses.messages() == []
    assert result == {"claimed": 1, "skipped": 1}
    assert Reminder.objects.get().task_id == nobody.id
    assert "no assignee or owner email" in caplog.text


def test_repeated_runs_send_once_and_a_new_due_date_re_arms(ses):
    task = due_in(5, assignee=UserFactory(email="a@example.com"))

    first, second = send_due_reminders(), send_due_reminders()
    services.task_update(actor=None, task=task, due_date=timezone.now() + timedelta(hours=10))
    third, fourth = send_due_reminders(), send_due_reminders()

    assert (first["sent"], second["claimed"], third["sent"], fourth["claimed"]) == (1, 0, 1, 0)
    assert len(ses.messages()) == 2
    assert Reminder.objects.count() == 2


def test_two_workers_at_the_same_moment_send_each_reminder_once(ses):
    for n in range(20):
        due_in(1 + n / 10, assignee=UserFactory(email=f"u{n}@example.com"))
    start = threading.Barrier(2)
    results: list[dict] = []

    def worker() -> None:
        start.wait()
        try:
            results.append(send_due_reminders())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sum(r.get("sent", 0) for r in results) == 20
    assert sorted(ses.recipients()) == sorted(f"u{n}@example.com" for n in range(20))


def test_a_claim_left_by_a_dead_worker_is_sent_by_a_later_run_after_the_lease(ses):
    due_in(5, assignee=UserFactory(email="a@example.com"))
    claimed_at = timezone.now()
    assert len(reminders._claim(Claim("dead", claimed_at))) == 1  # ...and the worker dies

    too_soon = send_due_reminders(now=claimed_at + timedelta(minutes=1))
    later = send_due_reminders(now=claimed_at + reminders.LEASE + timedelta(minutes=1))

    assert too_soon == {"claimed": 0}
    assert later == {"claimed": 1, "sent": 1}
    assert ses.recipients() == ["a@example.com"]


def test_a_permanent_rejection_is_recorded_and_not_retried(ses, caplog):
    from django.test import override_settings

    due_in(5, assignee=UserFactory(email="a@example.com"))

    with override_settings(DEFAULT_FROM_EMAIL="unverified@example.com"):
        result = send_due_reminders()
    again = send_due_reminders()

    assert result == {"claimed": 1, "failed": 1}
    assert again == {"claimed": 0}
    reminder = Reminder.objects.get()
    assert reminder.status == "failed"
    assert "MessageRejected" in reminder.error
    assert "rejected" in caplog.text


def test_transient_errors_are_retried_then_left_for_a_later_run(ses):
    due_in(5, assignee=UserFactory(email="a@example.com"))
    throttled = ClientError(
        {"Error": {"Code": "Throttling", "Message": "slow down"}}, "SendRawEmail"
    )

    with (
        mock.patch("django_ses.SESBackend.send_messages", side_effect=throttled) as send,
        mock.patch("scheduled.email._backoff", return_value=0),
    ):
        first = send_due_reminders()
    second = send_due_reminders()

    assert send.call_count == 4
    assert first == {"claimed": 1, "retry": 1}
    assert second == {"claimed": 1, "sent": 1}
    assert ses.recipients() == ["a@example.com"]


def test_each_email_costs_the_same_few_queries_and_is_committed_on_its_own(ses):
    def queries_to_send(count: int) -> int:
        for n in range(count):
            due_in(1 + n / 100, assignee=UserFactory(email=f"q{count}-{n}@example.com"))
        with CaptureQueriesContext(connection) as queries:
            assert send_due_reminders()["sent"] == count
        return len(queries)

    # The claim (BEGIN, two statements, COMMIT); then per email a transaction of its own:
    # BEGIN, its row lock (reading the task, project and users), its record, and the service
    # marking the task reminded (the project's lock, the task's reminder_sent_at set under the
    # task's lock in one statement, the event: its seq and row in one statement), COMMIT.
    queries_to_send(1)  # a session's first row lock prepares it (found or made, once)
    assert queries_to_send(3) == 4 + 7 * 3
    assert queries_to_send(30) == 4 + 7 * 30


def test_the_locking_read_is_prepared_once_per_database_session(ses):
    def statements(count: int) -> list[str]:
        for n in range(count):
            due_in(1 + n / 100, assignee=UserFactory(email=f"p{count}-{n}@example.com"))
        with CaptureQueriesContext(connection) as queries:
            assert send_due_reminders()["sent"] == count
        words = [query["sql"].split()[0] for query in queries]
        return [word for word in words if word in ("PREPARE", "EXECUTE")]

    def new_session() -> None:  # as a fresh connection: nothing prepared, nothing remembered
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")
        reminders._prepared.clear()

    new_session()
    first, again = statements(2), statements(2)
    reminders._prepared.clear()  # a process that forgot, on a session that has it
    remembered = statements(1)
    new_session()
    anew = statements(1)

    assert first == ["PREPARE", "EXECUTE", "EXECUTE"]
    assert again == ["EXECUTE", "EXECUTE"]
    assert remembered == ["EXECUTE"]  # found in pg_prepared_statements, not made twice
    assert anew == ["PREPARE", "EXECUTE"]


def test_a_worker_thread_makes_one_ses_client_for_all_its_runs(ses):
    import boto3.session

    make = boto3.session.Session.client
    with mock.patch.object(
        boto3.session.Session, "client", autospec=True, side_effect=make
    ) as made:
        for n in range(3):
            due_in(1 + n, assignee=UserFactory(email=f"c{n}@example.com"))
            assert send_due_reminders()["sent"] == 1

    assert made.call_count == 1  # a botocore client costs ~80 ms of CPU: never one per run
    assert len(ses.messages()) == 3


def test_each_email_s_mime_message_is_built_once(ses):
    from django.core.mail import EmailMessage

    build = EmailMessage.message
    with mock.patch.object(EmailMessage, "message", autospec=True, side_effect=build) as built:
        due_in(1, assignee=UserFactory(email="once@example.com"))
        assert send_due_reminders()["sent"] == 1

    assert built.call_count == 1  # checked before the send, and the same one sent by django-ses
    [message] = ses.messages()
    assert message["To"] == "once@example.com"


def test_an_error_in_the_middle_of_a_run_keeps_what_was_sent_before_it(ses):
    first, second = (due_in(1 + n, assignee=UserFactory(email=f"e{n}@example.com")) for n in (0, 1))
    message = reminders._message

    def fail_on_second(task):
        if task.id == second.id:
            raise RuntimeError("template broke")
        return message(task)

    claimed_at = timezone.now()
    with (
        mock.patch("scheduled.reminders._message", side_effect=fail_on_second),
        pytest.raises(RuntimeError),
    ):
        send_due_reminders(now=claimed_at)
    later = send_due_reminders(now=claimed_at + reminders.LEASE + timedelta(minutes=1))

    assert later == {"claimed": 1, "sent": 1}
    assert ses.recipients() == ["e0@example.com", "e1@example.com"]
    statuses = dict(Reminder.objects.values_list("task_id", "status"))
    assert statuses == {first.id: "sent", second.id: "sent"}


def test_a_task_completed_or_re_dated_after_the_claim_is_not_reminded(ses):
    done = due_in(2, assignee=UserFactory(email="done@example.com"))
    moved = due_in(3, assignee=UserFactory(email="moved@example.com"))
    claim = reminders._claim

    def claim_then_change(run, limit=None):
        claimed = claim(run, limit)
        Task.objects.filter(pk=done.pk).update(status=Task.Status.COMPLETED)
        Task.objects.filter(pk=moved.pk).update(due_date=moved.due_date + timedelta(hours=2))
        return claimed

    with mock.patch("scheduled.reminders._claim", side_effect=claim_then_change):
        result = send_due_reminders()

    assert result == {"claimed": 2, "not_due": 2}
    assert ses.messages() == []
    assert set(Reminder.objects.values_list("status", "claimed_at")) == {("pending", None)}
    # Reopened, it is reminded for its due date; the new due date gets a reminder of its own.
    Task.objects.filter(pk=done.pk).update(status=Task.Status.PENDING)
    assert send_due_reminders() == {"claimed": 2, "sent": 2}
    assert sorted(ses.recipients()) == ["done@example.com", "moved@example.com"]


def test_a_run_out_of_time_releases_what_it_has_not_sent_to_the_next_run(ses, settings):
    for n in range(3):
        due_in(1 + n, assignee=UserFactory(email=f"late{n}@example.com"))
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0  # no time to send anything

    assert send_due_reminders() == {"claimed": 3, "deferred": 3}
    assert ses.messages() == []
    assert set(Reminder.objects.values_list("status", "claimed_at")) == {("pending", None)}

    settings.CELERY_TASK_SOFT_TIME_LIMIT = 240
    assert send_due_reminders() == {"claimed": 3, "sent": 3}  # the next run, at once


def test_a_title_with_a_line_break_is_reminded_on_one_line_and_the_run_goes_on(ses):
    poison = due_in(
        1, assignee=UserFactory(email="p@example.com"), title="Poison\nBcc: x@evil.example"
    )
    due_in(2, assignee=UserFactory(email="next@example.com"), title="Next")

    result = send_due_reminders()

    assert result == {"claimed": 2, "sent": 2}
    first, second = ses.messages()
    assert first["Subject"].startswith("Reminder: 'Poison Bcc: x@evil.example' is due")
    assert first["Bcc"] is None
    assert second["To"] == "next@example.com"
    assert f"Task #{poison.id}, 'Poison" in first.get_content()  # the body keeps its lines


def test_a_message_that_cannot_be_built_is_failed_with_its_error_and_the_run_goes_on(ses):
    due_in(1, assignee=UserFactory(email="bad@example.com\nBcc: x@evil.example"))
    due_in(2, assignee=UserFactory(email="next@example.com"))

    result = send_due_reminders()
    again = send_due_reminders()

    assert result == {"claimed": 2, "failed": 1, "sent": 1}
    assert again == {"claimed": 0}
    assert ses.recipients() == ["next@example.com"]
    failed = Reminder.objects.get(status="failed")
    assert "could not be built" in failed.error
    assert "newline" in failed.error


def test_a_redelivered_run_takes_back_its_own_claim_at_once(ses):
    for n in range(3):
        due_in(1 + n, assignee=UserFactory(email=f"r{n}@example.com"))
    killed_at = timezone.now()
    assert len(reminders._claim(Claim("run-1", killed_at))) == 3  # ...and its worker is killed

    other = send_due_reminders(now=killed_at + timedelta(seconds=5), run_id="run-2")
    redelivered = send_due_reminders(now=killed_at + timedelta(seconds=5), run_id="run-1")

    assert other == {"claimed": 0}  # another run waits for the lease, as before
    assert redelivered == {"claimed": 3, "sent": 3}
    assert sorted(ses.recipients()) == [f"r{n}@example.com" for n in range(3)]


def test_a_celery_run_claims_under_its_task_id_which_a_redelivery_keeps(ses):
    from scheduled.celery import run_job

    due_in(1, assignee=UserFactory(email="a@example.com"))
    killed_at = timezone.now()
    reminders._claim(Claim("celery-task-id", killed_at))

    elsewhere = run_job.apply(args=["send_due_reminders"], task_id="another-id").get()
    redelivered = run_job.apply(args=["send_due_reminders"], task_id="celery-task-id").get()

    assert (elsewhere, redelivered) == ({"claimed": 0}, {"claimed": 1, "sent": 1})
    assert Reminder.objects.get().claimed_by == "celery-task-id"
    assert ses.recipients() == ["a@example.com"]


def test_a_sent_reminder_is_announced_as_the_task_and_invalidates_its_cached_lists(ses):
    from common.api.serializers import TaskSerializer
    from common.domain.events import envelope
    from common.domain.models import Event
    from common.infra.cache.versions import read_versions

    task = due_in(2, assignee=UserFactory(email="ann@example.com"))
    names = ["tasks", f"tasks:project:{task.project_id}"]
    before = read_versions(names)

    send_due_reminders()

    task.refresh_from_db()
    event = envelope(Event.objects.filter(project_id=task.project_id).latest("seq"))
    assert (event["type"], event["actor"]) == ("task.updated", None)
    assert event["data"] == TaskSerializer(task).data  # the task as GET shows it
    assert event["data"]["reminder_sent_at"] is not None
    after = read_versions(names)
    assert all(after[name] is not None and after[name] != before[name] for name in names)


def test_an_assignee_no_longer_a_member_is_not_reminded_the_owner_is(ses):
    ann = UserFactory(email="ann@example.com")
    task = due_in(3, assignee=ann, project__owner=UserFactory(email="owner@example.com"))
    Membership.objects.filter(project=task.project, user=ann).delete()  # behind the services

    assert send_due_reminders() == {"claimed": 1, "sent": 1}
    assert ses.recipients() == ["owner@example.com"]


def test_a_sent_reminder_whose_commit_times_out_is_recorded_again_and_the_run_goes_on(ses):
    from django.db import OperationalError

    first, second = (due_in(1 + n, assignee=UserFactory(email=f"l{n}@example.com")) for n in (0, 1))
    mark = services.task_mark_reminded
    calls = []

    def lock_timeout_once(**kwargs):
        calls.append(kwargs["task"].id)
        if len(calls) == 1:  # the project's lock not granted in time, after SES took the email
            raise OperationalError("canceling statement due to lock timeout")
        return mark(**kwargs)

    with (
        mock.patch("scheduled.reminders.task_mark_reminded", side_effect=lock_timeout_once),
        mock.patch("scheduled.reminders.RECORD_BACKOFF_SECONDS", 0),
    ):
        result = send_due_reminders()

    assert result == {"claimed": 2, "sent": 2}
    assert ses.recipients() == ["l0@example.com", "l1@example.com"]  # each once
    assert calls == [first.id, first.id, second.id]
    assert set(Reminder.objects.values_list("status", flat=True)) == {"sent"}
    assert not Task.objects.filter(reminder_sent_at=None).exists()


def test_a_database_error_before_the_send_leaves_the_claim_and_the_run_goes_on(ses):
    from django.db import OperationalError

    due_in(1, assignee=UserFactory(email="a@example.com"))
    due_in(2, assignee=UserFactory(email="b@example.com"))
    locked = reminders._locked
    calls = []

    def lock_timeout_once(reminder_id, **kwargs):
        calls.append(reminder_id)
        if len(calls) == 1:
            raise OperationalError("canceling statement due to lock timeout")
        return locked(reminder_id, **kwargs)

    claimed_at = timezone.now()
    with mock.patch("scheduled.reminders._locked", side_effect=lock_timeout_once):
        result = send_due_reminders(now=claimed_at)
    later = send_due_reminders(now=claimed_at + reminders.LEASE + timedelta(minutes=1))

    assert result == {"claimed": 2, "db_error": 1, "sent": 1}
    assert later["claimed"] == 1
    assert sorted(ses.recipients()) == ["a@example.com", "b@example.com"]


def test_the_compiled_locking_read_gives_the_rows_the_orm_gives(ses):
    # _lock_statement compiles _lock_query once with stand-in values (Django's Query, not a
    # public API): pin that it still finds exactly the ORM's row, values and types alike.
    due_in(5, assignee=UserFactory(email="a@example.com"), title="pinned")
    claim = Claim("run-pin", timezone.now())
    [(reminder_id, _)] = reminders._claim(claim)
    values = (reminder_id, Reminder.Status.PENDING.value, claim.at, claim.run_id)
    other = (reminder_id, Reminder.Status.PENDING.value, claim.at, "someone-else")

    with transaction.atomic():
        expected = list(reminders._lock_query(*values))
        with connection.cursor() as cursor:
            cursor.execute(*reminders._lock_statement(values))
            compiled = cursor.fetchall()
            cursor.execute(*reminders._lock_statement(other))
            not_ours = cursor.fetchall()

    assert len(expected) == 1
    assert compiled == expected
    assert not_ours == []
