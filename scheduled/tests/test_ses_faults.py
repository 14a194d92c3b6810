"""Email through an SES that accepts connections and never answers: a real TCP server."""

from datetime import timedelta

import pytest
from django.utils import timezone

from common.domain.models import Reminder, SummaryReport
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory
from scheduled import reminders
from scheduled.reminders import Claim, send_due_reminders
from scheduled.summaries import generate_project_summaries
from scheduled.tests.tcp import SilentServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def silent_ses(settings):
    server = SilentServer(marker=b"Action=SendRawEmail")
    settings.EMAIL_BACKEND = "scheduled.email.SESBackend"
    settings.AWS_SES_REGION_ENDPOINT_URL = server.url
    settings.AWS_SES_AUTO_THROTTLE = None
    # The deployed configuration (no botocore retries), with timeouts short enough for a test.
    settings.SES_CONNECT_TIMEOUT, settings.SES_READ_TIMEOUT = 1, 0.3
    yield server
    server.close()


def due_task():
    return TaskFactory(
        due_date=timezone.now() + timedelta(hours=2),
        assignee=UserFactory(email="a@example.com"),
    )


def test_a_silent_ses_gets_a_reminder_at_most_twice_across_runs_and_leases(silent_ses):
    due_task()
    start = timezone.now()

    first = send_due_reminders(now=start)
    second = send_due_reminders(now=start + timedelta(minutes=5))
    after_the_lease = send_due_reminders(now=start + reminders.LEASE + timedelta(minutes=10))

    assert first == {"claimed": 1, "retry": 1}  # recorded, not a crash, and not resent at once
    assert second == {"claimed": 1, "failed": 1}  # the one retry allowed, then failed
    assert after_the_lease == {"claimed": 0}
    assert silent_ses.wait_for_requests(2) == 2
    reminder = Reminder.objects.get()
    assert reminder.status == "failed"
    assert "outcome unknown" in reminder.error
    assert "Read timeout" in reminder.error


def test_a_worker_dying_during_the_one_retry_leaves_no_third_send(silent_ses):
    due_task()
    start = timezone.now()
    assert send_due_reminders(now=start) == {"claimed": 1, "retry": 1}
    claim = Claim("killed", start + timedelta(minutes=5))
    [(reminder_id, uncertain)] = reminders._claim(claim)
    assert uncertain == 1
    assert reminders._spend_resend(reminder_id, claim=claim) is None  # ...and it dies sending

    later = send_due_reminders(now=start + reminders.LEASE + timedelta(minutes=10))

    assert later == {"claimed": 1, "failed": 1}
    assert silent_ses.wait_for_requests(1) == 1
    assert "may have reached SES" in Reminder.objects.get().error


def test_a_summary_whose_send_timed_out_is_recorded_and_never_sent_again(silent_ses):
    ProjectFactory(owner=UserFactory(email="owner@example.com"))
    now = timezone.now()

    first = generate_project_summaries(now=now)
    again = generate_project_summaries(now=now + timedelta(minutes=5))

    assert (first["stored"], first["failed"], again["stored"]) == (1, 1, 0)
    assert "failed" not in again
    assert silent_ses.wait_for_requests(1) == 1
    report = SummaryReport.objects.get()
    assert report.email_status == "failed"
    assert "outcome unknown" in report.email_error
