"""The summaries part of bench.jobs, run in a child process on the bench database.

Run as `python -m bench._jobs_summaries --runs N` in the environment of
bench._jobs_db.child_env; prints one JSON line. Candidate: storing every project's report for
the day (scheduled.summaries._store: the aggregate query, the reports, their summary.generated
events, and the events' live push to Redis after commit), and separately the whole job with the
owners' emails sent inline through Django's locmem backend (SES stubbed). Reference: one GROUP BY
query that computes the same counts for every project, fetched whole. Before every run the
day's reports and their events are deleted. The stored counts are checked against the
reference's for every project.
"""

import argparse
import json
import statistics
import time

import django

from bench._jobs_db import NOW

REFERENCE_SQL = """
    SELECT p.id,
        count(t.id),
        count(t.id) FILTER (WHERE t.status = 'pending'),
        count(t.id) FILTER (WHERE t.status = 'in_progress'),
        count(t.id) FILTER (WHERE t.status = 'completed'),
        count(t.id) FILTER (WHERE t.status <> 'completed' AND t.due_date < %(now)s),
        count(t.id) FILTER (WHERE t.status <> 'completed'
                              AND t.due_date >= %(now)s AND t.due_date < %(end)s),
        count(t.id) FILTER (WHERE t.completed_at > %(start)s AND t.completed_at <= %(now)s),
        count(t.id) FILTER (WHERE t.created_at > %(start)s AND t.created_at <= %(now)s),
        coalesce((SELECT count(*) FROM common_comment c JOIN common_task ct ON ct.id = c.task_id
                  WHERE ct.project_id = p.id
                    AND c.created_at > %(start)s AND c.created_at <= %(now)s), 0)
    FROM common_project p LEFT JOIN common_task t ON t.project_id = p.id
    GROUP BY p.id
"""
RESET_SQL = (
    "DELETE FROM common_summaryreport",
    "DELETE FROM common_event WHERE type = 'summary.generated'",
    "UPDATE common_project SET event_seq = 0 WHERE event_seq <> 0",
)


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in RESET_SQL:
            cursor.execute(statement)


def timed(run) -> tuple[float, int, object]:
    """ms, statements executed, and the result of `run()`."""
    from django.db import connection

    statements: list[str] = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        result = run()
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(statements), result


def reference() -> dict[int, tuple]:
    from datetime import timedelta

    from django.db import connection

    params = {"now": NOW, "end": NOW + timedelta(hours=24), "start": NOW - timedelta(hours=24)}
    with connection.cursor() as cursor:
        cursor.execute(REFERENCE_SQL, params)
        return {row[0]: tuple(row[1:]) for row in cursor.fetchall()}


def stored_counts() -> dict[int, tuple]:
    from common.models import SummaryReport

    rows = SummaryReport.objects.values_list("project_id", *SummaryReport.COUNTS)
    return {row[0]: tuple(row[1:]) for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    django.setup()
    from django.conf import settings
    from django.core import mail

    from scheduled.summaries import _store, generate_project_summaries

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    store, job, ref, queries = [], [], [], {}
    errors: list[str] = []
    for _ in range(args.runs):
        reset()
        ms, queries["store"], _ = timed(lambda: _store(NOW, NOW.date()))
        store.append(ms)
        ms, _, expected = timed(reference)
        ref.append(ms)
        if stored_counts() != expected:
            errors.append("stored counts differ from the reference's")
        reset()
        mail.outbox = []
        ms, queries["job"], result = timed(lambda: generate_project_summaries(now=NOW))
        job.append(ms)
        if result["stored"] != len(expected):
            errors.append(f"job stored {result['stored']} of {len(expected)}")
    projects = len(expected)
    print(
        json.dumps(
            {
                "projects": projects,
                "emails": len(mail.outbox),
                "store_ms": statistics.median(store),
                "job_ms": statistics.median(job),
                "reference_ms": statistics.median(ref),
                "queries": queries,
                "errors": errors,
            }
        )
    )


if __name__ == "__main__":
    main()
