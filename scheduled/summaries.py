"""generate_project_summaries: each project's report for the day, stored, announced, emailed.

One statement computes every project's counts and stores the day's reports (INSERT ... SELECT);
on PostgreSQL the same statement takes their projects' next seqs and logs their
`summary.generated` events and the webhook deliveries of them, the events' data and envelopes
written by the database as the feed writes them (the rows never pass through models or
serializers); elsewhere (SQLite) the events are logged by publish_many, in a
number of queries that does not grow with the projects either. Emailing (the per-project work)
goes out in chunks: on a Celery worker each chunk is a job of its own, so more workers finish
sooner. Reports are unique per project and date, and an email goes out only from `pending`,
under the report's row lock: running the job twice for a date stores, announces and sends
nothing twice.
"""

import json
import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, router, transaction
from django.utils import timezone

from common.api.serializers import SummaryReportSerializer
from common.api.timestamps import rfc3339_utc
from common.domain import effects
from common.domain.events import OUTBOX, EventType, cache_versions, publish_many
from common.domain.models import Comment, Event, Project, SummaryReport, Task
from common.infra.event_push import encode
from scheduled.email import (
    EmailRejected,
    EmailUnavailable,
    EmailUncertain,
    send_email,
    shared_backend,
)

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
    email_backend = shared_backend()  # the process's one SES client
    return dict(Counter(_email(report_id, email_backend) for report_id in report_ids))


def _fan_out(chunks: list[list[int]]) -> dict:
    from celery import current_task

    if current_task and current_task.request.id:  # on a worker: let every worker take a share
        for chunk in chunks:
            current_task.app.send_task(
                "scheduled.run_job", args=["email_summaries"], kwargs={"report_ids": chunk}
            )
        return {"email_jobs": len(chunks)}
    return dict(sum((Counter(email_summaries(report_ids=chunk)) for chunk in chunks), Counter()))


# Every project's report for the day, computed and stored by the database in one statement: the
# counts are one pass over the tasks grouped by project (conditional counts), the recent comments
# their own aggregate joined per project (not a subquery per row). A report already stored for
# the date (a rerun, or a concurrent run that got there first: the insert waits for it) is left
# as it is, and only the new ones come back.
_STORE = """
    INSERT INTO {reports}
        (project_id, date, generated_at, {counts}, emailed_to, email_status, email_error)
    SELECT project_id, %(date)s, %(run_at)s, {counts}, nullif(owner_email, ''),
        CASE WHEN coalesce(owner_email, '') = '' THEN %(email_skipped)s ELSE %(email_pending)s END,
        ''
    FROM (
        SELECT p.id AS project_id,
            count(t.id) AS total,
            count(t.id) FILTER (WHERE t.status = %(pending)s) AS pending,
            count(t.id) FILTER (WHERE t.status = %(in_progress)s) AS in_progress,
            count(t.id) FILTER (WHERE t.status = %(completed)s) AS completed,
            count(t.id) FILTER (WHERE t.status <> %(completed)s AND t.due_date < %(run_at)s)
                AS overdue,
            count(t.id) FILTER (WHERE t.status <> %(completed)s
                AND t.due_date >= %(run_at)s AND t.due_date < %(day_ahead)s) AS due_next_24h,
            count(t.id) FILTER (WHERE t.completed_at > %(day_ago)s AND t.completed_at <= %(run_at)s)
                AS completed_last_24h,
            count(t.id) FILTER (WHERE t.created_at > %(day_ago)s AND t.created_at <= %(run_at)s)
                AS created_last_24h,
            -- u and c have at most one row per project: max() just takes it, and the grouping
            -- stays on p.id alone (the order the joins already produce)
            coalesce(max(c.recent), 0) AS comments_last_24h,
            max(u.email) AS owner_email
        FROM {projects} p
        LEFT JOIN {users} u ON u.id = p.owner_id
        LEFT JOIN {tasks} t ON t.project_id = p.id
        LEFT JOIN (
            SELECT ct.project_id, count(*) AS recent
            FROM {comments} cc JOIN {tasks} ct ON ct.id = cc.task_id
            WHERE cc.created_at > %(day_ago)s AND cc.created_at <= %(run_at)s
            GROUP BY ct.project_id
        ) c ON c.project_id = p.id
        GROUP BY p.id
    ) AS report
    WHERE true  -- SQLite's parser needs a WHERE before an upsert's ON CONFLICT
    ORDER BY project_id
    ON CONFLICT (project_id, date) DO NOTHING
    RETURNING {columns}
"""
_COLUMNS = ("id", "project_id", "date", "generated_at", *COUNTS, "emailed_to", "email_status")


def _store_statement(now: datetime, date) -> tuple[dict, str]:
    """_STORE's parameters and text for `now` and `date`."""
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "date": connection.ops.adapt_datefield_value(date),
        "run_at": adapt(now),
        "day_ago": adapt(now - DAY),
        "day_ahead": adapt(now + DAY),
        "pending": Task.Status.PENDING.value,
        "in_progress": Task.Status.IN_PROGRESS.value,
        "completed": Task.Status.COMPLETED.value,
        "email_pending": SummaryReport.EmailStatus.PENDING.value,
        "email_skipped": SummaryReport.EmailStatus.SKIPPED.value,
    }
    sql = _STORE.format(counts=", ".join(COUNTS), columns=", ".join(_COLUMNS), **_tables())
    return params, sql


# PostgreSQL: the reports, their projects' next seqs (locked in id order, as publish_many does),
# their events and the events' webhook deliveries (common.domain.events.OUTBOX) in one
# statement. Each event's data is the report as SummaryReportSerializer writes it (a test holds
# them equal), written by the database as the text that common.infra.event_push.encode makes of
# it (compact, keys in order: `_data_text`); the row takes it as jsonb, and the envelope's text
# around it comes back ready to push. Rows with a project are the events, the others the
# deliveries.
_STORE_AND_LOG = """
    WITH report AS ({store}),
    seq AS (
        UPDATE {projects} SET event_seq = event_seq + 1 WHERE id IN (
            SELECT id FROM {projects} WHERE id IN (SELECT project_id FROM report)
            ORDER BY id FOR NO KEY UPDATE
        )
        RETURNING id, event_seq
    ),
    item AS (
        SELECT gen_random_uuid() AS event_id, report.project_id, seq.event_seq,
            concat({data_text}) AS data
        FROM report JOIN seq ON seq.id = report.project_id
    ),
    logged AS (
        INSERT INTO {events} (id, project_id, seq, type, occurred_at, actor, data)
        SELECT event_id, project_id, event_seq, %(type)s, %(now)s, NULL, data::jsonb
        FROM item
        RETURNING id, project_id
    ),
    outbox AS ({outbox})
    SELECT project_id, concat(%(envelope_project)s::text, project_id, ',"seq":', event_seq,
        ',"id":"', event_id, %(envelope_id_to_data)s::text, data, '}}'), NULL::bigint
    FROM item
    UNION ALL
    SELECT NULL, NULL, id FROM outbox
"""


def _data_text(date, now: datetime) -> tuple[str, dict[str, str]]:
    """concat()'s arguments that write an event's data as encode() does (keys sorted, no
    spaces), and their parameters: the text between the columns, the run's date and time in it."""
    constants = {"date": date.isoformat(), "generated_at": rfc3339_utc(now)}
    columns = {
        "id": "report.id",
        "project": "report.project_id",
        **{name: f"report.{name}" for name in COUNTS},
        "emailed_to": "coalesce(to_json(report.emailed_to)::text, 'null')",
        "email_status": "to_json(report.email_status)::text",
    }
    args, params, text = [], {}, "{"
    for name in sorted([*constants, *columns]):
        text += f"{json.dumps(name)}:"
        if name in constants:
            text += f"{json.dumps(constants[name])},"
        else:
            params[key := f"data_{len(params)}"] = text
            args += [f"%({key})s::text", columns[name]]
            text = ","
    params[key := f"data_{len(params)}"] = text.removesuffix(",") + "}"
    return ", ".join([*args, f"%({key})s::text"]), params


def _store(now: datetime, date) -> int:
    """Store and announce the day's reports not stored yet; return how many."""
    if connection.vendor == "postgresql":
        return _store_and_log(now, date)
    params, sql = _store_statement(now, date)
    with transaction.atomic():
        # The inserted rows, as models; raw() would read from a read database if a router had one.
        stored = SummaryReport.objects.raw(sql, params, using=router.db_for_write(SummaryReport))
        reports = list(stored)
        data = SummaryReportSerializer(reports, many=True).data  # fields built once, not per report
        items = [(report.project_id, row) for report, row in zip(reports, data, strict=True)]
        publish_many(type=EventType.SUMMARY_GENERATED, items=items, actor=None)
    if not reports:
        logger.info("summaries for %s: all stored already", date)
    return len(reports)


def _store_and_log(now: datetime, date) -> int:
    """_store on PostgreSQL: one statement stores the reports and logs their events."""
    params, sql = _store_and_log_statement(now, date, timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        # The texts as encode() writes them: JSON's escapes for what is not ASCII (rare: an
        # owner's address), which PostgreSQL writes as it is.
        messages = [
            (project_id, text if text.isascii() else encode(json.loads(text)))
            for project_id, text, _ in rows
            if project_id is not None
        ]
        deliveries = [delivery for project_id, _, delivery in rows if project_id is None]
        versions = cache_versions(EventType.SUMMARY_GENERATED, *(p for p, _ in messages))
        effects.on_commit(versions=versions, messages=messages, deliveries=deliveries)
    if not messages:
        logger.info("summaries for %s: all stored already", date)
    return len(messages)


def _store_and_log_statement(now: datetime, date, occurred: datetime) -> tuple[dict, str]:
    """_STORE_AND_LOG's parameters and text, its events logged at `occurred`."""
    params, store = _store_statement(now, date)
    kind = EventType.SUMMARY_GENERATED.value
    data_text, data_params = _data_text(date, now)
    params |= data_params | {"type": kind, "now": occurred}
    params["envelope_project"] = f'{{"type":{json.dumps(kind)},"project":'
    params["envelope_id_to_data"] = (
        f'","occurred_at":{json.dumps(rfc3339_utc(occurred))},"actor":null,"data":'
    )
    sql = _STORE_AND_LOG.format(
        store=store.strip(), data_text=data_text, outbox=OUTBOX.strip(), events=_table(Event),
        **_tables()
    )  # fmt: skip
    return params, sql


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _tables() -> dict[str, str]:
    """The tables _STORE reads and writes, as the models name them (the user model's included)."""
    models = {
        "reports": SummaryReport,
        "projects": Project,
        "tasks": Task,
        "comments": Comment,
        "users": get_user_model(),
    }
    return {name: connection.ops.quote_name(model._meta.db_table) for name, model in models.items()}


def _email(report_id: int, email_backend) -> str:
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
            send_email(to=report.emailed_to, subject=subject, body=body, connection=email_backend)
        except EmailRejected as exc:
            logger.error("summary %s to %s rejected: %s", report.id, report.emailed_to, exc)
            report.email_status, report.email_error = SummaryReport.EmailStatus.FAILED, str(exc)
        except EmailUnavailable as exc:
            logger.warning("summary %s not emailed yet, a later run retries: %s", report.id, exc)
            return "retry"
        except EmailUncertain as exc:
            # It may have gone out: a rerun for the date must not send it again.
            logger.error("summary %s to %s: outcome unknown: %s", report.id, report.emailed_to, exc)
            report.email_status = SummaryReport.EmailStatus.FAILED
            report.email_error = f"outcome unknown: {exc}"
        else:
            report.email_status = SummaryReport.EmailStatus.SENT
        report.save(update_fields=["email_status", "email_error"])
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
