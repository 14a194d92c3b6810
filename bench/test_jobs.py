"""bench.jobs runs and checks its own work; not how fast anything is.

A tiny run (2,000 tasks, 50 due, one run; two real workers on RabbitMQ against the SES stub, one
of them killed in a second run; the list pages at 2,000 and 4,000 tasks) on bench databases of
its own (taskwire_bench_jobs_smoke*: not the full run's, which a tiny run would reseed).
"""

from bench import jobs


def test_jobs_sends_one_email_per_due_task_and_stores_every_summary() -> None:
    argv = ["--database", "taskwire_bench_jobs_smoke", "--tasks", "2000", "--due", "50"]
    argv += ["--projects", "10", "--users", "20", "--runs", "1", "--warmup", "0"]
    argv += ["--rate", "100", "--latency-ms", "10", "--workers", "2", "--kill-workers", "2"]
    argv += ["--growth", "2000,4000", "--page-runs", "2"]
    argv += ["--growth-database", "taskwire_bench_jobs_smoke_growth"]
    result = jobs.run(jobs.parse_args(argv))

    reminders = result["reminders"]
    assert reminders["errors"] == []  # claimed rows, emails, 'sent' rows and marked tasks: 50
    [check] = reminders["checks"]
    assert set(check.values()) == {50}
    # the claim, then per email: lock+read, record, and task_mark_reminded (the project's lock,
    # the task's locking update, its event); the child's session prepares the lock+read once
    # (looked up, then made)
    assert reminders["job_queries"] == [2 + 2 + 5 * 50]
    assert len(reminders["claim_statements"]) == 2  # by statement: its create and its claim
    assert all(ms > 0 for ms in reminders["claim_ms"] + reminders["reference_ms"])
    summaries = result["summaries"]
    assert summaries["errors"] == []
    assert summaries["projects"] == 10
    assert summaries["emails"] > 0
    assert summaries["store_ms"] > 0
    assert summaries["reference_ms"] > 0
    assert summaries["queries"]["store"] == 1  # reports, seqs and events: one statement
    for side in ("store_cpu_ms", "reference_cpu_ms"):  # PostgreSQL runs on this machine here
        assert len(summaries[side]) == 1
        assert all(ms > 0 for ms in summaries[side])

    paced, killed = result["pace"]["runs"]
    for run in (paced, killed):  # every due task's email accepted by the stub, all recorded sent
        assert run["tasks_emailed"] == 50
        assert run["statuses"] == {"sent": 50}
        assert run["throttled_outcomes"] == 0
        assert run["tasks_more"] == 0
        assert run["wall_s"] > 0
        assert run["sustained_per_s"] > 0
        assert run["worker_cpu_ms_per_email"] > 0
        assert run["postgres_cpu_ms_per_email"] > 0  # the workers' sessions, on this machine
        assert run["stub_cpu_ms_per_email"] > 0
    assert paced["tasks_twice"] == []  # exactly once
    assert killed["killed_after"] is not None
    assert set(killed["tasks_twice"]) <= set(killed["uncertain_tasks"])  # only what was in flight

    small, large = result["growth"]
    assert (small["tasks"], large["tasks"]) == (2000, 4000)
    for size, per_project in ((small, 2), (large, 4)):
        pages = size["pages"]
        assert pages["project page 1"]["count"] == per_project
        assert pages["project last page"]["rows"] == per_project
        assert pages["user page 1"]["count"] == 20 * per_project
        assert all(page["ms"] > 0 for page in pages.values())
