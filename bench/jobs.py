"""The scheduled jobs on a large database: send_due_reminders against one claim statement.

Database: taskwire_jobsbench on 127.0.0.1 (or --database; created if missing, migrated, kept
with its data, reseeded by PostgreSQL itself when the counts differ, then ANALYZEd): by default
1,000,000 tasks in 1,000 projects, of which 10,000 are open, due within 24 hours of a fixed
"now", not yet reminded and assigned to a user with an email (bench/_jobs_db.py has the layout).

Reminders (in a child process, production settings, bench/_jobs_reminders.py):
  candidate  send_due_reminders(now=NOW) end to end: claim, one email per reminder, marking
             sent; and its claim phase alone, scheduled.reminders._claim(NOW).
  reference  one INSERT INTO common_reminder ... SELECT ... FROM common_task (the due rows,
             through the partial index task_reminder_due_idx) ON CONFLICT DO NOTHING
             RETURNING id, in its own transaction: the claim as one statement.
Email: Django's locmem backend, set in the child (SES stubbed by that local in-process backend,
not moto). The state is reset before every run (reminder rows deleted, reminder_sent_at NULL
again on the tasks reminded, VACUUM), so each run does the same work. Goal: each within 2 x the
reference; when the claim misses it, EXPLAIN (ANALYZE, BUFFERS) of each of its statements is
printed. Every whole-job run is checked: as many emails and 'sent' reminders as due tasks.
Redis (the job bumps list-cache versions): a prefix of this run's own, deleted at the end.
"""

import argparse
import platform
import statistics
import sys

from bench import _jobs_db as db
from bench import _procs, print_table

DATABASE = "taskwire_bench_jobs"
GOAL = 2.0  # candidate within 2 x the one claim statement
REMINDER_HEADERS = (
    "measure",
    "candidate ms",
    "reference ms",
    "ratio",
    "goal",
    "met",
    "candidate queries",
)
STATEMENT_HEADERS = ("claim statement", "median ms in execute")
JOB_STATEMENT_HEADERS = ("whole-job statement", "count", "total ms in execute")


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def _queries(counts: list[int]) -> str:
    return "/".join(str(count) for count in counts)


# -- reminders ------------------------------------------------------------------------------------


def reminder_rows(probe: dict, due: int) -> list[list[str]]:
    reference = statistics.median(probe["reference_ms"])
    rows = []
    for name, key, queries in (
        ("claim only", "claim_ms", probe["claim_queries"]),
        (f"whole job (claim + {due} sends)", "job_ms", probe["job_queries"]),
    ):
        ours = statistics.median(probe[key])
        ratio = ours / reference
        rows.append(
            [
                name,
                f"{ours:.1f}",
                f"{reference:.1f}",
                f"{ratio:.2f}",
                f"<= {GOAL:g}",
                _yes(ratio <= GOAL),
                _queries(queries),
            ]
        )
    return rows


def print_claim_statements(probe: dict) -> None:
    statements = probe["claim_statements"]
    if not statements:
        return
    claim = statistics.median(probe["claim_ms"])
    inside = sum(s["median_ms"] for s in statements)
    print(f"\nclaim only, statement by statement (median of {len(probe['claim_ms'])} runs)")
    rows = [[s["statement"], f"{s['median_ms']:.1f}"] for s in statements]
    rows.append(["sum in execute", f"{inside:.1f}"])
    rows.append(
        ["outside execute (Python: rows, models, parameters; COMMIT)", f"{claim - inside:.1f}"]
    )
    print_table(rows, STATEMENT_HEADERS)


def print_job_statements(probe: dict) -> None:
    groups = probe["job_statements"]
    if not groups:
        return
    job = probe["job_ms"][-1]
    inside = sum(group["ms"] for group in groups)
    print(f"\nwhole job, its last run ({job:.0f} ms) by statement")
    rows = [[g["statement"], str(g["count"]), f"{g['ms']:.1f}"] for g in groups]
    rows.append(["sum in execute", str(sum(g["count"] for g in groups)), f"{inside:.1f}"])
    rows.append(
        [
            "outside execute (Python, email backend, COMMITs, Redis version bumps)",
            "",
            f"{job - inside:.1f}",
        ]
    )
    print_table(rows, JOB_STATEMENT_HEADERS)


def print_plans(plans: list[dict]) -> None:
    print(
        "\nEXPLAIN (ANALYZE, BUFFERS) of each claim statement, in order, each on the state the "
        "previous ones left (run in a savepoint rolled back before the statement itself ran, so "
        "an index may also hold the rolled-back rows' entries), then of the reference; key lines"
    )
    for plan in plans:
        print(f"\n  {plan['statement']}")
        for line in plan["lines"]:
            print(f"    {line}")


def print_checks(probe: dict, due: int) -> None:
    for number, check in enumerate(probe["checks"], start=1):
        found = ", ".join(f"{name} {count}" for name, count in check["found"].items())
        print(f"check, whole job run {number}: {found} (expected {due} each)")
    if probe["errors"]:
        print("\nERRORS")
        for error in probe["errors"]:
            print(f"  {error}")


def reminders(args: argparse.Namespace, env: dict[str, str]) -> dict:
    options = ["--due", str(args.due), "--runs", str(args.runs), "--warmup", str(args.warmup)]
    options += ["--goal", str(GOAL), "--explain", args.explain]
    return db.child_json("bench._jobs_reminders", options, env)


def print_reminders(probe: dict, args: argparse.Namespace) -> None:
    print(
        f"\nreminders: now = {probe['now']}; email: Django's locmem backend "
        f"({probe['email_backend']}, set in the child): SES stubbed by that local in-process "
        "stub, no moto, no network"
    )
    print(
        f"median of {args.runs} run(s) each, {args.warmup} uncounted warm-up of the claim and the "
        "reference; state reset before every run; ratio = candidate median / reference median; "
        "reference = one INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING id, own "
        "transaction; queries counted by execute_wrapper (BEGIN/COMMIT not included)"
    )
    print_table(reminder_rows(probe, args.due), REMINDER_HEADERS)
    print_claim_statements(probe)
    print_job_statements(probe)
    if probe["plans"]:
        print_plans(probe["plans"])
    print()
    print_checks(probe, args.due)


# -- the run --------------------------------------------------------------------------------------


def print_summaries(probe: dict, args: argparse.Namespace) -> None:
    """The summaries part: the day's reports for every project beside one GROUP BY query."""
    reference = probe["reference_ms"]
    print(
        f"\nsummaries: {probe['projects']} projects, now = {db.NOW.isoformat()}; reference = one "
        "GROUP BY query computing the same counts; store = aggregate + reports + events + their "
        "live push; job = store + every owner's email (locmem, inline)"
    )
    rows = [
        [name, f"{ms:.1f}", f"{reference:.1f}", f"{ms / reference:.2f}", str(probe["queries"][key])]
        for name, key, ms in (
            ("store (all projects)", "store", probe["store_ms"]),
            ("whole job (+ emails)", "job", probe["job_ms"]),
        )
    ]
    print_table(rows, ["measure", "candidate ms", "reference ms", "ratio", "candidate queries"])
    met = probe["store_ms"] <= GOAL * reference
    print(
        f"goal: store within {GOAL}x the GROUP BY, queries independent of the projects: "
        f"{'met' if met else 'NOT met'} (ratio {probe['store_ms'] / reference:.2f}); "
        f"emails sent by the job runs: {probe['emails']}"
    )
    for error in probe["errors"]:
        print(f"ERROR: {error}")


def run(args: argparse.Namespace) -> dict:
    """Seed, then both parts; {"setup", "reminders", "summaries"}, each part's probe."""
    env = _procs.prepared_env("jobs", args.database)
    setup = db.prepare(args.database, args.tasks, args.projects, args.users, args.due)
    try:
        runs = ["--runs", str(args.runs)]
        return {
            "setup": setup,
            "reminders": reminders(args, env),
            "summaries": db.child_json("bench._jobs_summaries", runs, env),
        }
    finally:
        _procs.drop_prefix(env["REDIS_PREFIX"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = run(args)
    seeded = (
        f"reseeded in {result['setup']['seconds']:.1f} s"
        if result["setup"]["reseeded"]
        else "reused"
    )
    print(
        f"jobs: {args.tasks} tasks in {args.projects} projects, {args.users} users, {args.due} "
        f"due within 24 h; database {args.database} ({seeded}, kept); Python "
        f"{platform.python_version()}; {_procs.machine()}"
    )
    print_reminders(result["reminders"], args)
    print_summaries(result["summaries"], args)
    return 0 if not (result["reminders"]["errors"] or result["summaries"]["errors"]) else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench jobs",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    add = parser.add_argument
    add("--tasks", type=int, default=1_000_000, help="tasks in the database (default 1000000)")
    add("--due", type=int, default=10_000, help="of which due for a reminder (default 10000)")
    add("--projects", type=int, default=10000, help="projects they belong to (default 10000)")
    add("--users", type=int, default=1000, help="users, all with an email (default 1000)")
    add("--runs", type=int, default=3, help="timed runs of each (default 3)")
    add("--warmup", type=int, default=1, help="uncounted claim/reference runs first (default 1)")
    add("--database", default=DATABASE, help=f"bench database (default {DATABASE})")
    add(
        "--explain",
        choices=("auto", "always", "never"),
        default="auto",
        help="EXPLAIN the claim: when it misses the goal (auto, default), always, never",
    )
    args = parser.parse_args(argv)
    if min(args.tasks, args.due, args.projects, args.users, args.runs) < 1 or args.warmup < 0:
        parser.error("counts and --runs must be at least 1, --warmup at least 0")
    if args.due > args.tasks:
        parser.error("--due cannot exceed --tasks")
    return args


if __name__ == "__main__":
    sys.exit(main())
