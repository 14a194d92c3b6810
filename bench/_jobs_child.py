"""bench.jobs's Django side (bench._child): the seeded database, and the jobs' runs on it.

Seeding is INSERT ... SELECT generate_series (seconds for a million tasks), deterministic
(arithmetic on the row number), kept when the counts already match. For N tasks of which D
are due (stride = N // D):
  due      every stride-th task, up to D of them: open, due within (NOW, NOW + 24 h], not yet
           reminded, assigned to a user with an email;
  the rest 45 % due in the past (some reminded, some completed), 40 % open and due more than
           24 h ahead (in the reminders' partial index, outside the window), 15 % completed with
           due dates anywhere from 30 days back to 60 days ahead (the window included).
Email goes to Django's locmem backend, set here: SES stubbed in-process, no moto, no network.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection, transaction

from bench import median, taking_turns, timed
from bench._child import recording
from common.domain.models import Project, Reminder, SummaryReport, Task
from scheduled.reminders import WINDOW, Claim, _claim, send_due_reminders
from scheduled.summaries import _store, generate_project_summaries

T = TypeVar("T")
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)  # the jobs' fixed "now"
USER_PREFIX = "jobs-user-"
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
# A reminders run undone: no reminder rows, reminder_sent_at NULL again on the tasks it reminded,
# and none of the task.updated events each sent reminder logged (with the projects' seqs).
REMINDERS_RESET = (
    "UPDATE common_task SET reminder_sent_at = NULL WHERE reminder_sent_at IS NOT NULL "
    "AND id IN (SELECT task_id FROM common_reminder)",
    "DELETE FROM common_reminder",
    "DELETE FROM common_event",
    "UPDATE common_project SET event_seq = 0 WHERE event_seq <> 0",
)
SUMMARIES_RESET = (
    "DELETE FROM common_summaryreport",
    "DELETE FROM common_event",  # every project's seq starts again at 0
    "UPDATE common_project SET event_seq = 0 WHERE event_seq <> 0",
)
# The reminders' reference: their claim as one statement, through the partial index.
CLAIM_SQL = (
    "INSERT INTO common_reminder (task_id, due_date, status, claimed_at, claimed_by, "
    "uncertain_sends, sent_at, recipient, message_id, error, created_at) "
    "SELECT id, due_date, 'pending', %s, 'reference', 0, NULL, '', '', '', now() FROM common_task "
    "WHERE due_date > %s AND due_date <= %s AND reminder_sent_at IS NULL "
    "AND status <> 'completed' ON CONFLICT DO NOTHING RETURNING id"
)
# The summaries' reference: every project's counts in one GROUP BY.
SUMMARY_SQL = """
    SELECT p.id, count(t.id),
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
    FROM common_project p LEFT JOIN common_task t ON t.project_id = p.id GROUP BY p.id
"""
# The summaries' reference: the minimal write. The same GROUP BY as the job's (every project's
# counts and the recent comments' aggregate), its rows inserted as the reports, and one event row
# per report (its data the row as JSON, seq 1: no project touched) in the same statement.
MINIMAL_WRITE_SQL = """
    WITH report AS ({store})
    INSERT INTO common_event (id, project_id, seq, type, occurred_at, actor, data)
    SELECT gen_random_uuid(), report.project_id, 1, 'summary.generated', %(run_at)s, NULL,
           to_jsonb(report)
    FROM report
"""
USERS_SQL = """
    INSERT INTO {users} (id, password, is_superuser, username, first_name, last_name, email,
                         is_staff, is_active, date_joined)
    SELECT n, '!', false, %(prefix)s || lpad(n::text, 5, '0'), '', '',
           %(prefix)s || n || '@example.com', false, true, %(now)s - interval '400 days'
    FROM generate_series(1, %(users)s) AS n
"""
PROJECTS_SQL = """
    INSERT INTO common_project (id, name, description, created_at, updated_at, owner_id, event_seq)
    SELECT n, 'Project ' || n, 'Jobs bench project ' || n, %(now)s - interval '365 days',
           %(now)s - interval '1 day', 1 + n %% %(users)s, 0
    FROM generate_series(1, %(projects)s) AS n
"""
# Per task n: is it one of the due (d), else its kind k (0-8 past, 9-16 ahead, 17-19 completed).
TASKS_SQL = """
INSERT INTO common_task (id, title, description, status, due_date, comment_count,
                         reminder_sent_at, completed_at, created_at, updated_at, assignee_id,
                         project_id)
SELECT n,
       'Task ' || n || ' of project ' || (1 + n %% %(projects)s),
       'Jobs bench task ' || n || ': what to do, who asked, and by when.',
       CASE WHEN d THEN (ARRAY['pending', 'in_progress'])[1 + n %% 2]
            WHEN k < 9 THEN (ARRAY['pending', 'in_progress', 'completed'])[1 + n %% 3]
            WHEN k < 17 THEN (ARRAY['pending', 'in_progress'])[1 + n %% 2]
            ELSE 'completed' END,
       due,
       n %% 7,
       CASE WHEN NOT d AND k < 9 AND n %% 2 = 0 THEN due - interval '24 hours' END,
       CASE WHEN (NOT d AND k < 9 AND n %% 3 = 2) OR (NOT d AND k >= 17)
            THEN %(now)s - make_interval(secs => 1 + n %% 86400) END,
       %(now)s - interval '90 days',
       %(now)s - interval '1 day',
       CASE WHEN d THEN 1 + n %% %(users)s
            WHEN n %% 5 = 0 THEN NULL
            ELSE 1 + n %% %(users)s END,
       1 + n %% %(projects)s
FROM (
    SELECT n, d, k,
           CASE WHEN d THEN %(now)s + make_interval(secs => 1 + (n / %(stride)s * 7919) %% 86400)
                WHEN k < 9 THEN %(now)s - make_interval(secs => 1 + (n * 7919) %% (60 * 86400))
                WHEN k < 17
                THEN %(now)s + interval '24 hours'
                     + make_interval(secs => 1 + (n * 7919) %% (90 * 86400))
                ELSE %(now)s - interval '30 days'
                     + make_interval(secs => (n * 7919) %% (90 * 86400)) END AS due
    FROM (
        SELECT n,
               n %% %(stride)s = 0 AND n / %(stride)s <= %(due)s AS d,
               (n * 31) %% 20 AS k
        FROM generate_series(1::bigint, %(tasks)s::bigint) AS n
    ) AS numbered
) AS dated
"""


def _execute(*statements: str, params: dict | None = None) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement, params)


def _reset() -> None:
    """Undo a reminders run (REMINDERS_RESET), then vacuum what it left dead."""
    with transaction.atomic():
        _execute(*REMINDERS_RESET)
    _execute("VACUUM common_task, common_reminder, common_event, common_project")


def reset_reminders() -> int:
    """_reset() for bench._jobs_pace: every due task due a reminder again; returns 0."""
    _reset()
    return 0


def _counts() -> dict[str, int]:
    due = Task.objects.filter(due_date__gt=NOW, due_date__lte=NOW + WINDOW)
    due = due.filter(reminder_sent_at=None, assignee__email__gt="")
    return {
        "tasks": Task.objects.count(),
        "projects": Project.objects.count(),
        "users": get_user_model().objects.filter(username__startswith=USER_PREFIX).count(),
        "due": due.exclude(status=Task.Status.COMPLETED).count(),
    }


def _seed(tasks: int, projects: int, users: int, due: int) -> None:
    """Empty the tables and fill them (see the module's docstring), then ANALYZE."""
    params = {"now": NOW, "tasks": tasks, "projects": projects, "users": users, "due": due}
    params |= {"stride": tasks // due, "prefix": USER_PREFIX}
    user_table = connection.ops.quote_name(get_user_model()._meta.db_table)
    with transaction.atomic():
        _execute(
            "TRUNCATE common_reminder, common_comment, common_event, common_summaryreport, "
            f"common_task, common_project, {user_table} RESTART IDENTITY CASCADE"
        )
        _execute(USERS_SQL.format(users=user_table), PROJECTS_SQL, TASKS_SQL, params=params)
        for table in (user_table, "common_project", "common_task"):
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            _execute(f"SELECT setval({sequence}, max(id)) FROM {table}")
    _execute("VACUUM ANALYZE")


def prepare(tasks: int, projects: int, users: int, due: int) -> dict:
    """Reset the database, reseeded unless the counts already match: {"reseeded", "seconds"}."""
    wanted = {"tasks": tasks, "projects": projects, "users": users, "due": due}
    _reset()
    if _counts() == wanted:
        return {"reseeded": False, "seconds": 0.0}
    ms, _ = timed(_seed, tasks, projects, users, due)
    if (found := _counts()) != wanted:
        raise RuntimeError(f"seeding produced {found}, not {wanted}")
    return {"reseeded": True, "seconds": ms / 1000}


def _claim_run() -> dict:
    """scheduled.reminders._claim alone."""
    _reset()
    with recording() as statements:
        ms, claimed = timed(_claim, Claim(run_id="bench", at=NOW))
    return {"ms": ms, "rows": len(claimed), "statements": statements}


def _reference_run() -> dict:
    """CLAIM_SQL in its own transaction."""
    _reset()

    def claim() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(CLAIM_SQL, [NOW, NOW, NOW + WINDOW])
            return len(cursor.fetchall())

    ms, rows = timed(claim)
    return {"ms": ms, "rows": rows}


def _job_run() -> dict:
    """send_due_reminders end to end, and what it left: emails, sent reminders, marked tasks."""
    _reset()
    mail.outbox = []
    with recording() as statements:
        ms, outcomes = timed(lambda: send_due_reminders(now=NOW))
    marked = Task.objects.filter(due_date__gt=NOW, due_date__lte=NOW + WINDOW)
    found = {
        "emails in the outbox": len(mail.outbox),
        "reminders with status 'sent'": Reminder.objects.filter(
            status=Reminder.Status.SENT
        ).count(),
        "due tasks marked reminder_sent_at": marked.exclude(reminder_sent_at=None).count(),
        "claimed (returned)": outcomes.get("claimed", 0),
        "sent (returned)": outcomes.get("sent", 0),
    }
    return {"ms": ms, "statements": statements, "found": found}


def _by_statement(statements: list[tuple[str, float]]) -> list[list]:
    """[label, count, total ms] per distinct statement, by total ms."""
    groups: dict[str, list] = {}
    for sql, ms in statements:
        group = groups.setdefault(sql, [sql, 0, 0.0])
        group[1:] = [group[1] + 1, group[2] + ms]
    return sorted(groups.values(), key=lambda group: group[2], reverse=True)


def reminders(due: int, runs: int, warmup: int) -> dict:
    """Claim and reference taking turns, then the whole job, `runs` times; each checked."""
    settings.EMAIL_BACKEND = LOCMEM
    for _ in range(warmup):
        _claim_run()
        _reference_run()
    claims, references, jobs = [], [], []
    for round_ in range(runs):
        pair = taking_turns({"claim": _claim_run, "reference": _reference_run}, 1, start=round_)
        claims += pair["claim"]
        references += pair["reference"]
        jobs.append(_job_run())
    _reset()
    found = [("claim", run["rows"]) for run in claims]
    found += [("reference", run["rows"]) for run in references]
    found += [(f"whole job, {name}", n) for job in jobs for name, n in job["found"].items()]
    errors = [f"{name}: {count}, expected {due}" for name, count in found if count != due]
    shapes = {tuple(sql for sql, _ in run["statements"]) for run in claims}
    return {
        "email_backend": settings.EMAIL_BACKEND,
        "claim_ms": [run["ms"] for run in claims],
        "reference_ms": [run["ms"] for run in references],
        "job_ms": [job["ms"] for job in jobs],
        "claim_queries": sorted({len(run["statements"]) for run in claims}),
        "job_queries": sorted({len(job["statements"]) for job in jobs}),
        "claim_statements": [  # per statement of the claim, when every run had the same ones
            [sql, median(run["statements"][index][1] for run in claims)]
            for index, sql in enumerate(shapes.pop() if len(shapes) == 1 else ())
        ],
        "job_statements": _by_statement(jobs[-1]["statements"]),
        "checks": [job["found"] for job in jobs],
        "errors": errors,
    }


def _summary_reference() -> dict[int, list]:
    params = {"now": NOW, "end": NOW + timedelta(hours=24), "start": NOW - timedelta(hours=24)}
    with connection.cursor() as cursor:
        cursor.execute(SUMMARY_SQL, params)
        return {row[0]: list(row[1:]) for row in cursor.fetchall()}


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _cpu_ms(backend: int) -> float | None:
    """CPU ms so far of this process and of its PostgreSQL backend (the scheduler's run time, in
    ns: /proc/PID/schedstat); None when the backend's is not readable (another machine's)."""
    try:
        ran_ns = int(Path(f"/proc/{backend}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return ran_ns / 1e6 + time.process_time() * 1000


def _cpu_timed(function: Callable[[], T]) -> tuple[float, float | None, T]:
    """(wall ms, CPU ms of this process and its backend or None, result) of one call."""
    backend = _backend_pid()
    before = _cpu_ms(backend)
    ms, result = timed(function)
    after = _cpu_ms(backend)
    return ms, None if before is None or after is None else after - before, result


def _minimal_write() -> int:
    """MINIMAL_WRITE_SQL in its own transaction (COMMIT included); returns the reports stored."""
    from scheduled import summaries as job

    params, sql = job._store_statement(NOW, NOW.date())
    sql = MINIMAL_WRITE_SQL.format(
        store=sql.replace("ON CONFLICT (project_id, date) DO NOTHING", "")
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def summaries(runs: int, job_runs: int = 1) -> dict:
    """The day's reports stored for every project beside the minimal write, `runs` times taking
    turns; the stored counts checked against SUMMARY_SQL's; then `job_runs` whole jobs with
    their emails (job_ms None without)."""
    settings.EMAIL_BACKEND = LOCMEM
    mail.outbox = []
    store, job, reference, read, queries, errors = [], [], [], [], {}, []
    expected = _summary_reference()
    for round_ in range(runs):

        def candidate() -> tuple[float, float | None]:
            _execute(*SUMMARIES_RESET)
            _execute("VACUUM common_summaryreport, common_event, common_project")
            statements: list[tuple[str, float]] = []

            def store_recorded() -> None:
                with recording() as recorded:
                    _store(NOW, NOW.date())
                statements.extend(recorded)

            ms, cpu_ms, _ = _cpu_timed(store_recorded)
            queries["store"] = len(statements)
            stored = SummaryReport.objects.values_list("project_id", *SummaryReport.COUNTS)
            if {row[0]: list(row[1:]) for row in stored} != expected:
                errors.append("stored counts differ from the reference's")
            return ms, cpu_ms

        def minimal() -> tuple[float, float | None]:
            _execute(*SUMMARIES_RESET)
            _execute("VACUUM common_summaryreport, common_event, common_project")
            ms, cpu_ms, rows = _cpu_timed(_minimal_write)
            if rows != len(expected):
                errors.append(f"the minimal write stored {rows} of {len(expected)}")
            return ms, cpu_ms

        turns = taking_turns({"store": candidate, "minimal": minimal}, 1, start=round_)
        store += turns["store"]
        reference += turns["minimal"]
        read.append(timed(_summary_reference)[0])
    for _ in range(job_runs):
        _execute(*SUMMARIES_RESET)
        mail.outbox = []
        with recording() as statements:
            ms, result = timed(lambda: generate_project_summaries(now=NOW))
        job.append(ms)
        queries["job"] = len(statements)
        if result["stored"] != len(expected):
            errors.append(f"job stored {result['stored']} of {len(expected)}")
    cpu = {"store_cpu_ms": [c for _, c in store], "reference_cpu_ms": [c for _, c in reference]}
    return {"projects": len(expected), "emails": len(mail.outbox),
            "store_ms": median(ms for ms, _ in store), "job_ms": median(job) if job else None,
            "reference_ms": median(ms for ms, _ in reference), "read_ms": median(read),
            "store_runs_ms": [ms for ms, _ in store],
            "reference_runs_ms": [ms for ms, _ in reference],
            **{name: None if None in runs else runs for name, runs in cpu.items()},
            "queries": queries, "errors": errors}  # fmt: skip
