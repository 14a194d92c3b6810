"""bench.jobs runs and checks its own work; not how fast anything is.

A tiny run (2,000 tasks, 50 due, one run) on a bench database of its own
(taskwire_bench_jobs_smoke: not the full run's million tasks, which a tiny run would reseed).
"""

from bench import jobs


def test_jobs_sends_one_email_per_due_task_and_stores_every_summary() -> None:
    argv = ["--database", "taskwire_bench_jobs_smoke", "--tasks", "2000", "--due", "50"]
    argv += ["--projects", "10", "--users", "20", "--runs", "1", "--warmup", "0"]
    result = jobs.run(jobs.parse_args(argv))

    reminders = result["reminders"]
    assert reminders["errors"] == []  # claimed rows, emails, 'sent' rows and marked tasks: 50
    [check] = reminders["checks"]
    assert set(check.values()) == {50}
    # the claim, then per email: lock+read, record, and task_mark_reminded (the project's and
    # the task's locks, the task's update, its event)
    assert reminders["job_queries"] == [2 + 6 * 50]
    assert len(reminders["claim_statements"]) == 2  # by statement: its create and its claim
    assert all(ms > 0 for ms in reminders["claim_ms"] + reminders["reference_ms"])
    summaries = result["summaries"]
    assert summaries["errors"] == []
    assert summaries["projects"] == 10
    assert summaries["emails"] > 0
    assert summaries["store_ms"] > 0
