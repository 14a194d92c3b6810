"""generate_project_summaries against PostgreSQL, with SES mocked by moto."""

import json
import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from common.api.serializers import SummaryReportSerializer
from common.domain.events import envelope
from common.domain.models import Comment, Event, SummaryReport, Task, Webhook, WebhookDelivery
from common.infra.event_push import encode
from common.tests.factories import CommentFactory, ProjectFactory, TaskFactory, UserFactory
from scheduled.summaries import _store, generate_project_summaries

pytestmark = pytest.mark.django_db(transaction=True)


def hand_made_project(now):
    project = ProjectFactory(name="Apollo", owner=UserFactory(email="owner@example.com"))
    tasks = [
        TaskFactory(project=project, status="pending", due_date=now + timedelta(hours=2)),
        TaskFactory(project=project, status="in_progress", due_date=now - timedelta(hours=1)),
        TaskFactory(
            project=project,
            status="completed",
            due_date=now - timedelta(hours=5),
            completed_at=now - timedelta(hours=3),
        ),
        TaskFactory(project=project, status="pending", due_date=now + timedelta(hours=48)),
    ]
    for task, age in zip(tasks, (2, 5, 10, 72), strict=True):
        Task.objects.filter(pk=task.pk).update(created_at=now - timedelta(hours=age))
    for age in (1, 1, 48):
        comment = CommentFactory(task=tasks[0] if age == 1 else tasks[1])
        Comment.objects.filter(pk=comment.pk).update(created_at=now - timedelta(hours=age))
    return project


def test_each_project_gets_its_counts_stored_emailed_and_announced(ses):
    now = timezone.now()
    project = hand_made_project(now)

    result = generate_project_summaries(now=now)

    report = SummaryReport.objects.get(project=project)
    assert result == {"date": timezone.localdate(now).isoformat(), "stored": 1, "sent": 1}
    counts = {name: getattr(report, name) for name in SummaryReport.COUNTS}
    assert counts == {
        "total": 4,
        "pending": 2,
        "in_progress": 1,
        "completed": 1,
        "overdue": 1,
        "due_next_24h": 1,
        "completed_last_24h": 1,
        "created_last_24h": 3,
        "comments_last_24h": 2,
    }
    assert (report.emailed_to, report.email_status, report.date) == (
        "owner@example.com",
        "sent",
        timezone.localdate(now),
    )
    [message] = ses.messages()
    assert message["To"] == "owner@example.com"
    assert "Apollo" in message["Subject"]
    assert re.search(r"comments last 24h +2\s", message.get_content())
    event = Event.objects.get(type="summary.generated")
    assert envelope(event)["project"] == project.id
    assert event.data == {**SummaryReportSerializer(report).data, "email_status": "pending"}


def test_running_twice_for_a_date_stores_sends_and_announces_nothing_twice(ses):
    now = timezone.now()
    hand_made_project(now)

    generate_project_summaries(now=now)
    again = generate_project_summaries(now=now + timedelta(minutes=5))

    assert again["stored"] == 0
    assert "sent" not in again
    assert SummaryReport.objects.count() == 1
    assert len(ses.messages()) == 1
    assert Event.objects.filter(type="summary.generated").count() == 1


def test_owners_without_an_address_are_skipped_and_rejections_recorded(ses):
    ProjectFactory(owner=UserFactory(email=""))
    ProjectFactory(owner=None)
    rejected = ProjectFactory(owner=UserFactory(email="r@example.com"))

    with override_settings(DEFAULT_FROM_EMAIL="unverified@example.com"):
        result = generate_project_summaries()

    assert result["stored"] == 3
    assert result["failed"] == 1
    statuses = dict(SummaryReport.objects.values_list("project_id", "email_status"))
    assert sorted(statuses.values()) == ["failed", "skipped", "skipped"]
    assert statuses[rejected.id] == "failed"
    assert ses.messages() == []


def test_storing_takes_the_same_number_of_queries_for_3_or_30_projects():
    def queries_to_store(projects: int) -> int:
        SummaryReport.objects.all().delete()
        while Project_count() < projects:
            TaskFactory(project=ProjectFactory(owner=UserFactory()))
        with CaptureQueriesContext(connection) as queries:
            stored = _store(timezone.now(), timezone.localdate())
        assert stored == projects
        return len(queries)

    assert queries_to_store(3) == queries_to_store(30)


def Project_count() -> int:
    from common.domain.models import Project

    return Project.objects.count()


def test_two_runs_at_once_store_each_report_once(ses):
    for _ in range(10):
        ProjectFactory(owner=UserFactory())
    now = timezone.now()
    start = threading.Barrier(2)
    stored: list[int] = []

    def run() -> None:
        start.wait()
        try:
            stored.append(_store(now, timezone.localdate(now)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(stored) == [0, 10]
    assert SummaryReport.objects.count() == 10
    assert Event.objects.filter(type="summary.generated").count() == 10


def test_a_project_name_with_a_line_break_is_summarised_on_one_line_and_the_run_goes_on(ses):
    ProjectFactory(name="Apollo\nBcc: x@evil.example", owner=UserFactory(email="a@example.com"))
    ProjectFactory(name="Next", owner=UserFactory(email="next@example.com"))

    result = generate_project_summaries()

    assert (result["stored"], result["sent"]) == (2, 2)
    first, second = sorted(ses.messages(), key=lambda message: message["To"])
    assert first["Subject"].startswith("Daily summary: Apollo Bcc: x@evil.example, ")
    assert first["Bcc"] is None
    assert second["To"] == "next@example.com"


def test_a_summary_that_cannot_be_built_is_failed_with_its_error_not_shown_in_the_api(ses):
    bad = ProjectFactory(owner=UserFactory(email="bad@example.com\nBcc: x@evil.example"))
    ProjectFactory(owner=UserFactory(email="next@example.com"))

    result = generate_project_summaries()

    assert (result["stored"], result["sent"], result["failed"]) == (2, 1, 1)
    assert ses.recipients() == ["next@example.com"]
    report = SummaryReport.objects.get(project=bad)
    assert report.email_status == "failed"
    assert "could not be built" in report.email_error
    assert "email_error" not in SummaryReportSerializer(report).data


def test_each_stored_report_is_pushed_as_its_logged_events_envelope():
    from unittest import mock

    for _ in range(3):
        TaskFactory(project=ProjectFactory(owner=UserFactory(email="o@example.com")))

    with mock.patch("common.domain.effects.push_messages") as push:
        generate_project_summaries()

    [(messages,), _] = push.call_args
    pushed = {project_id: json.loads(text) for project_id, text in messages}
    logged = {e.project_id: envelope(e) for e in Event.objects.filter(type="summary.generated")}
    assert pushed == logged
    assert len(pushed) == 3


def test_each_pushed_text_is_byte_for_byte_what_the_feed_and_the_websocket_replay_send():
    from unittest import mock

    # the owners' addresses: plain, then with what JSON escapes (a quote, a backslash, a
    # non-ASCII letter: PostgreSQL writes it as it is, encode() as \u00f6)
    for email in ("o@example.com", 'j\\o"rg@example.com', "jörg@example.com", ""):
        TaskFactory(project=ProjectFactory(owner=UserFactory(email=email)))

    with mock.patch("common.domain.effects.push_messages") as push:
        generate_project_summaries()

    [(messages,), _] = push.call_args
    logged = {e.project_id: e for e in Event.objects.filter(type="summary.generated")}
    assert {project_id: text for project_id, text in messages} == {
        project_id: encode(envelope(event)) for project_id, event in logged.items()
    }
    assert len(messages) == 4


def test_the_webhooks_that_ask_for_summaries_get_each_one_queued_after_the_commit():
    from unittest import mock

    project = ProjectFactory(owner=UserFactory(email="o@example.com"))
    other = ProjectFactory(owner=UserFactory(email="p@example.com"))
    url = "https://hooks.example.com/in"
    wanted = [
        Webhook.objects.create(project=project, url=url, events=["*"]),
        Webhook.objects.create(project=project, url=url, events=["summary.generated"]),
        Webhook.objects.create(
            project=other, url=url, events=["task.created", "summary.generated"]
        ),
    ]
    Webhook.objects.create(project=project, url=url, events=["task.created"])
    Webhook.objects.create(project=other, url=url, events=["*"], active=False)

    with mock.patch("scheduled.webhooks.deliveries_queue") as queue:
        generate_project_summaries()

    deliveries = list(WebhookDelivery.objects.select_related("webhook"))
    events = {e.id: e for e in Event.objects.filter(type="summary.generated")}
    assert sorted(d.webhook_id for d in deliveries) == sorted(hook.id for hook in wanted)
    assert {(d.webhook.project_id, events[d.event_id].project_id) for d in deliveries} == {
        (project.id, project.id),
        (other.id, other.id),
    }
    assert {(d.attempt, d.status) for d in deliveries} == {(1, "pending")}
    [(ids,), _] = queue.call_args
    assert sorted(ids) == sorted(d.id for d in deliveries)
