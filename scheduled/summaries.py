"""generate_project_summaries: each project's report for the day, stored, announced, emailed.

Two aggregate queries compute every project's counts; the reports are stored and their
`summary.generated` events logged in one transaction, in a number of queries that does not grow
with the projects. Emailing (the per-project work) goes out in chunks: on a Celery worker each
chunk is a job of its own, so more workers finish sooner. Reports are unique per project and
date, and an email goes out only from `pending`, under the report's row lock: running the job
twice for a date stores, announces and sends nothing twice.
"""

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from common.events import EventType, publish_many
from common.models import Comment, Project, SummaryReport, Task
from common.serializers import SummaryReportSerializer
from scheduled.email import EmailRejected, EmailUnavailable, send_email

logger = logging.getLogger(__name__)

DAY = timedelta(hours=24)
EMAIL_CHUNK = 200
COUNTS = SummaryReport.COUNTS


def generate_project_summaries(*, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    date = timezone.localdate(now)
    stored = _store(now, date)
    pending = list(
        SummaryReport.objects.filter(date=date, email_status=SummaryReport.EmailStatus.PENDING)
        .order_by("id")
        .values_list("id", flat=True)
    )
    chunks = [pending[i : i + EMAIL_CHUNK] for i in range(0, len(pending), EMAIL_CHUNK)]
    emailed = _fan_out(chunks)
    return {"date": date.isoformat(), "stored": stored, **emailed}


def email_summaries(*, report_ids: list[int]) -> dict:
    """Email the owners of these reports, each at most once."""
    return dict(Counter(_email(report_id) for report_id in report_ids))


def _fan_out(chunks: list[list[int]]) -> dict:
    from celery import current_task

    if current_task and current_task.request.id:  # on a worker: let every worker take a share
        for chunk in chunks:
            current_task.app.send_task(
                "scheduled.run_job", args=["email_summaries"], kwargs={"report_ids": chunk}
            )
        return {"email_jobs": len(chunks)}
    return dict(sum((Counter(email_summaries(report_ids=chunk)) for chunk in chunks), Counter()))


def _store(now: datetime, date) -> int:
    rows = list(_counts(now).exclude(summaries__date=date))
    comments = _comments_by_project(now)
    reports = [
        SummaryReport(
            project_id=row["id"],
            date=date,
            generated_at=now,
            emailed_to=row["owner_email"] or None,
            email_status=(
                SummaryReport.EmailStatus.PENDING
                if row["owner_email"]
                else SummaryReport.EmailStatus.SKIPPED
            ),
            comments_last_24h=comments.get(row["id"], 0),
            **{name: row[name] for name in COUNTS if name != "comments_last_24h"},
        )
        for row in rows
    ]
    try:
        with transaction.atomic():
            SummaryReport.objects.bulk_create(reports, batch_size=2000)
            data = SummaryReportSerializer(
                reports, many=True
            ).data  # fields built once, not per report
            items = [(report.project_id, row) for report, row in zip(reports, data, strict=True)]
            publish_many(type=EventType.SUMMARY_GENERATED, items=items, actor=None)
    except IntegrityError:  # a concurrent run stored this date's reports first
        logger.info("summaries for %s: another run stored them", date)
        return 0
    return len(reports)


def _counts(now: datetime):
    """Every project's task counts as of `now`: one query, whatever the number of projects."""
    open_ = ~Q(tasks__status=Task.Status.COMPLETED)
    return (
        Project.objects.order_by("id")
        .annotate(
            owner_email=F("owner__email"),
            total=Count("tasks"),
            pending=Count("tasks", filter=Q(tasks__status=Task.Status.PENDING)),
            in_progress=Count("tasks", filter=Q(tasks__status=Task.Status.IN_PROGRESS)),
            completed=Count("tasks", filter=Q(tasks__status=Task.Status.COMPLETED)),
            overdue=Count("tasks", filter=open_ & Q(tasks__due_date__lt=now)),
            due_next_24h=Count(
                "tasks", filter=open_ & Q(tasks__due_date__gte=now, tasks__due_date__lt=now + DAY)
            ),
            completed_last_24h=Count(
                "tasks", filter=Q(tasks__completed_at__gt=now - DAY, tasks__completed_at__lte=now)
            ),
            created_last_24h=Count(
                "tasks", filter=Q(tasks__created_at__gt=now - DAY, tasks__created_at__lte=now)
            ),
        )
        .values("id", "owner_email", *(name for name in COUNTS if name != "comments_last_24h"))
    )


def _comments_by_project(now: datetime) -> dict[int, int]:
    """Comments of the last 24 h per project: a second aggregate, not a subquery per row (one
    in the first would join every task row to it and be grouped by it)."""
    recent = Comment.objects.filter(created_at__gt=now - DAY, created_at__lte=now)
    return dict(recent.values_list("task__project").annotate(n=Count("id")).order_by())


def _email(report_id: int) -> str:
    with transaction.atomic():
        report = (
            SummaryReport.objects.select_for_update(of=("self",))
            .select_related("project")
            .filter(id=report_id, email_status=SummaryReport.EmailStatus.PENDING)
            .first()
        )
        if report is None:
            return "taken"
        subject, body = _message(report)
        try:
            send_email(to=report.emailed_to, subject=subject, body=body)
        except EmailRejected as exc:
            logger.error("summary %s to %s rejected: %s", report.id, report.emailed_to, exc)
            report.email_status = SummaryReport.EmailStatus.FAILED
        except EmailUnavailable as exc:
            logger.warning("summary %s not emailed yet, a later run retries: %s", report.id, exc)
            return "retry"
        else:
            report.email_status = SummaryReport.EmailStatus.SENT
        report.save(update_fields=["email_status"])
        return str(report.email_status)


def _message(report: SummaryReport) -> tuple[str, str]:
    when = timezone.localtime(report.generated_at).strftime(f"%H:%M ({settings.TIME_ZONE})")
    subject = f"Daily summary: {report.project.name}, {report.date:%a %d %b %Y}"
    rows = [(name.replace("_", " "), getattr(report, name)) for name in COUNTS]
    width = max(len(label) for label, _ in rows)
    table = "\n".join(f"  {label.ljust(width)}  {value:>6}" for label, value in rows)
    body = (
        f"Project #{report.project_id}, '{report.project.name}', on {report.date:%A %d %B %Y} "
        f"at {when}:\n\n{table}\n"
    )
    return subject, body
