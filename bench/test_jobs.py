"""Checks that bench.jobs runs and reports, not how fast anything is.

Its children run with an environment of their own, on a bench database of their own
(taskwire_jobsbench_tiny: not the suite's, and not the full run's million tasks, which a tiny run
would otherwise reseed); the run is a tiny one (2,000 tasks, 50 due, one run).
"""

import pytest

from bench import jobs, table_rows


def test_jobs_reports_both_reminder_rows_and_sends_one_email_per_due_task(
    capsys: pytest.CaptureFixture,
) -> None:
    argv = ["--database", "taskwire_jobsbench_tiny", "--tasks", "2000", "--due", "50"]
    argv += ["--projects", "10", "--users", "20", "--runs", "1", "--warmup", "0"]
    assert jobs.main(argv) == 0
    out = capsys.readouterr().out

    rows = {row["measure"]: row for row in table_rows(out, jobs.REMINDER_HEADERS)}
    assert set(rows) == {"claim only", "whole job (claim + 50 sends)"}
    for row in rows.values():
        assert float(row["candidate ms"]) > 0
        assert float(row["reference ms"]) > 0
        assert row["met"] in {"yes", "NO"}
    # the claim (2), then per email: lock and read, record, mark its task
    assert int(rows["whole job (claim + 50 sends)"]["candidate queries"]) == 2 + 3 * 50
    assert "emails in the outbox 50," in out
    assert "reminders with status 'sent' 50," in out
    assert "ERRORS" not in out
    assert "summaries: 10 projects" in out and "ERROR:" not in out
