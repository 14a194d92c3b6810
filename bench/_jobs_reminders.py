"""The reminders part of bench.jobs, run in a child process on the bench database.

Run as `python -m bench._jobs_reminders --due N --runs N --warmup N --goal X --explain WHEN` in
the environment of bench._jobs_db.child_env (production settings); prints one JSON line.

Email goes to Django's locmem backend (settings.EMAIL_BACKEND is set here, after set-up): SES is
stubbed by that in-process backend, no moto and no network. Before every run the state is reset
(bench._jobs_db.RESET_SQL, then VACUUM), so each run claims and sends the same reminders.
Queries are counted with connection.execute_wrapper (statements only: BEGIN and COMMIT, which
psycopg sends itself, are not counted).
"""

import argparse
import json
import statistics
import sys
import time

import django

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
PLAN_KEYS = (
    "Index Cond",
    "Filter:",
    "Rows Removed",
    "Heap Fetches",
    "Hash Cond",
    "Join Filter",
    "Conflict",
    "Tuples",
    "Sort Method",
    "Buffers:",
    "Planning Time",
    "Execution Time",
)
LINE_LIMIT = 150


class Recorder:
    """An execute wrapper: each statement's SQL, parameters (if kept) and time in execute."""

    def __init__(self, keep_params: bool) -> None:
        self.keep_params = keep_params
        self.statements: list[tuple[str, object, float]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            self.statements.append((sql, params if self.keep_params else None, elapsed))


class Explainer:
    """An execute wrapper that runs EXPLAIN (ANALYZE, BUFFERS) of each statement first, in a
    savepoint it rolls back, so the statement itself then runs on the state it would have seen."""

    def __init__(self) -> None:
        self.plans: list[dict] = []

    def __call__(self, execute, sql, params, many, context):
        raw = context["cursor"].cursor
        in_transaction = context["connection"].in_atomic_block
        raw.execute("SAVEPOINT bench_explain" if in_transaction else "BEGIN")
        raw.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        lines = [row[0] for row in raw.fetchall()]
        raw.execute("ROLLBACK TO SAVEPOINT bench_explain" if in_transaction else "ROLLBACK")
        self.plans.append({"statement": label(sql), "lines": key_lines(lines)})
        return execute(sql, params, many, context)


def label(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= LINE_LIMIT else f"{text[: LINE_LIMIT - 3]}..."


def key_lines(plan: list[str]) -> list[str]:
    """The plan's nodes and the lines that explain their cost, each cut to LINE_LIMIT."""
    kept = [
        line
        for number, line in enumerate(plan)
        if number == 0 or "->" in line or any(key in line for key in PLAN_KEYS)
    ]
    return [line if len(line) <= LINE_LIMIT else f"{line[: LINE_LIMIT - 3]}..." for line in kept]


def reset() -> None:
    from django.db import connection, transaction

    from bench._jobs_db import RESET_SQL, VACUUM_SQL

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in RESET_SQL:
            cursor.execute(statement)
    with connection.cursor() as cursor:
        cursor.execute(VACUUM_SQL)


def reference_sql() -> str:
    return (
        "INSERT INTO common_reminder (task_id, due_date, status, claimed_at, claimed_by, "
        "uncertain_sends, sent_at, recipient, message_id, error, created_at) "
        "SELECT id, due_date, 'pending', %s, 'reference', 0, NULL, '', '', '', now() "
        "FROM common_task "
        "WHERE due_date > %s AND due_date <= %s AND reminder_sent_at IS NULL "
        "AND status <> 'completed' ON CONFLICT DO NOTHING RETURNING id"
    )


def run_reference(now) -> tuple[float, int]:
    """The one claim statement, in its own transaction: (ms, rows)."""
    from django.db import connection, transaction

    from scheduled.reminders import WINDOW

    reset()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(reference_sql(), [now, now, now + WINDOW])
        rows = len(cursor.fetchall())
    return (time.perf_counter() - started) * 1000, rows


def run_claim(now) -> tuple[float, int, Recorder]:
    """scheduled.reminders._claim alone: (ms, reminders claimed, its statements)."""
    from django.db import connection

    from scheduled.reminders import Claim, _claim

    reset()
    recorder = Recorder(keep_params=False)
    with connection.execute_wrapper(recorder):
        started = time.perf_counter()
        claimed = _claim(Claim(run_id="bench", at=now))
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(claimed), recorder


def run_job(now, due: int) -> tuple[float, Recorder, dict, list[str]]:
    """send_due_reminders end to end: (ms, its statements, its outcomes, the failed checks)."""
    from django.core import mail
    from django.db import connection

    from common.models import Reminder, Task
    from scheduled.reminders import WINDOW, send_due_reminders

    reset()
    mail.outbox = []
    recorder = Recorder(keep_params=False)
    with connection.execute_wrapper(recorder):
        started = time.perf_counter()
        outcomes = send_due_reminders(now=now)
        elapsed = (time.perf_counter() - started) * 1000
    sent = Reminder.objects.filter(status=Reminder.Status.SENT).count()
    marked = Task.objects.filter(
        due_date__gt=now, due_date__lte=now + WINDOW, reminder_sent_at__isnull=False
    ).count()
    found = {
        "emails in the outbox": len(mail.outbox),
        "reminders with status 'sent'": sent,
        "due tasks marked reminder_sent_at": marked,
        "claimed (returned)": outcomes.get("claimed", 0),
        "sent (returned)": outcomes.get("sent", 0),
    }
    errors = [f"{name}: {count}, expected {due}" for name, count in found.items() if count != due]
    return elapsed, recorder, {"outcomes": outcomes, "found": found}, errors


def explain_claim(now) -> list[dict]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement of one _claim, then of the reference."""
    from django.db import connection, transaction

    from scheduled.reminders import WINDOW, Claim, _claim

    reset()
    explainer = Explainer()
    with connection.execute_wrapper(explainer):
        _claim(Claim(run_id="bench", at=now))
    reset()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {reference_sql()}", [now, now, now + WINDOW])
        lines = [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    reference = {"statement": "reference: " + label(reference_sql()), "lines": key_lines(lines)}
    return [*explainer.plans, reference]


def statement_medians(recorders: list[Recorder]) -> list[dict]:
    """Per statement of the claim (same sequence every run): its label and median ms."""
    shapes = {tuple(label(sql) for sql, _, _ in r.statements) for r in recorders}
    if len(shapes) != 1:
        return []
    return [
        {
            "statement": label(sql),
            "median_ms": statistics.median(r.statements[index][2] for r in recorders),
        }
        for index, (sql, _, _) in enumerate(recorders[0].statements)
    ]


def statement_totals(recorder: Recorder) -> list[dict]:
    """One run's statements grouped by SQL: how many, and their total ms in execute."""
    groups: dict[str, dict] = {}
    for sql, _, ms in recorder.statements:
        group = groups.setdefault(label(sql), {"statement": label(sql), "count": 0, "ms": 0.0})
        group["count"] += 1
        group["ms"] += ms
    return sorted(groups.values(), key=lambda group: group["ms"], reverse=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench._jobs_reminders")
    parser.add_argument("--due", type=int, required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--goal", type=float, required=True)
    parser.add_argument("--explain", choices=("auto", "always", "never"), default="auto")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    django.setup()
    from django.conf import settings
    from django.db import connection

    from bench._jobs_db import NOW

    settings.EMAIL_BACKEND = LOCMEM
    claim_ms: list[float] = []
    reference_ms: list[float] = []
    job_ms: list[float] = []
    recorders: list[Recorder] = []
    errors: list[str] = []
    checks: list[dict] = []
    job_queries: list[int] = []
    job_recorder = Recorder(keep_params=False)
    for _ in range(args.warmup):
        run_claim(NOW)
        run_reference(NOW)
    for round_ in range(args.runs):
        first_claim = round_ % 2 == 0
        for which in ("claim", "reference") if first_claim else ("reference", "claim"):
            if which == "claim":
                ms, claimed, recorder = run_claim(NOW)
                claim_ms.append(ms)
                recorders.append(recorder)
            else:
                ms, claimed = run_reference(NOW)
                reference_ms.append(ms)
            if claimed != args.due:
                errors.append(f"run {round_ + 1}, {which}: {claimed} rows, expected {args.due}")
        ms, job_recorder, found, failed = run_job(NOW, args.due)
        job_ms.append(ms)
        job_queries.append(len(job_recorder.statements))
        checks.append(found)
        errors += [f"run {round_ + 1}, whole job: {problem}" for problem in failed]
    ratio = statistics.median(claim_ms) / statistics.median(reference_ms)
    explain = args.explain == "always" or (args.explain == "auto" and ratio > args.goal)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
    result = {
        "now": NOW.isoformat(),
        "postgres": server_version,
        "email_backend": settings.EMAIL_BACKEND,
        "claim_ms": claim_ms,
        "reference_ms": reference_ms,
        "job_ms": job_ms,
        "claim_queries": sorted({len(r.statements) for r in recorders}),
        "job_queries": sorted(set(job_queries)),
        "claim_statements": statement_medians(recorders),
        "job_statements": statement_totals(job_recorder),
        "checks": checks,
        "errors": errors,
        "plans": explain_claim(NOW) if explain else [],
    }
    reset()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
