"""The scheduled jobs on a large database: send_due_reminders against one claim statement.

Database: taskwire_bench_jobs on 127.0.0.1 (or --database; created if missing, migrated, kept
with its data, reseeded by PostgreSQL itself when the counts differ, then ANALYZEd): by default
1,000,000 tasks in 10,000 projects, of which 10,000 are open, due within 24 hours of a fixed
"now", not yet reminded and assigned to a user with an email (bench/_jobs_child.py has the
layout). Both parts run in a Django child (production settings, email to Django's locmem
backend: SES stubbed in-process, not moto), the state reset before every run so each does the
same work.

Reminders: candidate send_due_reminders(now=NOW) end to end (claim, one email per reminder,
marking sent), and its claim phase alone (scheduled.reminders._claim); reference one INSERT INTO
common_reminder ... SELECT ... FROM common_task ON CONFLICT DO NOTHING RETURNING id, in its own
transaction: the claim as one statement. Every whole-job run is checked: as many emails and
'sent' reminders as due tasks. Summaries: candidate every project's report for the day (the
aggregate, the reports, their events and live push) and the whole job with the owners' emails;
reference one GROUP BY computing the same counts, checked equal. Goal: within 2 x the reference.
"""

import argparse
import platform
import sys

from bench import _procs, median, print_table, verdict

DATABASE = "taskwire_bench_jobs"
GOAL = 2.0  # candidate within 2 x the reference
CHILD = "bench._jobs_child"
HEADERS = ("measure", "candidate ms", "reference ms", "ratio", "goal", "met", "candidate queries")


def run(args: argparse.Namespace) -> dict:
    """Seed, then both parts: {"setup", "reminders", "summaries"}, each the child's data."""
    # Seeding a million tasks is one statement of minutes, beyond the production timeout.
    with _procs.session("jobs", args.database) as session:
        env = {**session.env, "DB_STATEMENT_TIMEOUT_MS": "600000"}
        counts = {"tasks": args.tasks, "projects": args.projects, "users": args.users}
        return {
            "setup": _procs.call(f"{CHILD}:prepare", env, **counts, due=args.due),
            "reminders": _procs.call(
                f"{CHILD}:reminders", env, due=args.due, runs=args.runs, warmup=args.warmup
            ),
            "summaries": _procs.call(f"{CHILD}:summaries", env, runs=args.runs),
        }


def _row(name: str, ours: float, theirs: float, queries: object) -> list[str]:
    ratio = ours / theirs
    met = [f"{ratio:.2f}", f"<= {GOAL:g}", verdict(ratio <= GOAL)]
    return [name, f"{ours:.1f}", f"{theirs:.1f}", *met, str(queries)]


def print_reminders(probe: dict, args: argparse.Namespace) -> None:
    print(
        f"\nreminders: median of {args.runs} run(s) each, {args.warmup} uncounted warm-up of the "
        f"claim and the reference; email: {probe['email_backend']}; ratio = candidate median / "
        "reference median; queries counted by execute_wrapper (BEGIN/COMMIT not included)"
    )
    claim, job, reference = (median(probe[key]) for key in ("claim_ms", "job_ms", "reference_ms"))
    queries = ["/".join(map(str, probe[key])) for key in ("claim_queries", "job_queries")]
    rows = [_row("claim only", claim, reference, queries[0])]
    rows.append(_row(f"whole job (claim + {args.due} sends)", job, reference, queries[1]))
    print_table(rows, HEADERS)
    if statements := probe["claim_statements"]:
        inside = sum(ms for _, ms in statements)
        rows = [[sql, f"{ms:.1f}"] for sql, ms in statements]
        rows += [["sum in execute", f"{inside:.1f}"], ["outside execute", f"{claim - inside:.1f}"]]
        print_table(rows, ("claim statement", "median ms in execute"), "claim only, by statement")
    groups, last = probe["job_statements"], probe["job_ms"][-1]
    inside = sum(ms for _, _, ms in groups)
    rows = [[sql, count, f"{ms:.1f}"] for sql, count, ms in groups]
    rows.append(["sum in execute", sum(count for _, count, _ in groups), f"{inside:.1f}"])
    rows.append(["outside execute (Python, email, COMMITs, Redis)", "", f"{last - inside:.1f}"])
    title = f"whole job, its last run ({last:.0f} ms) by statement"
    print_table(rows, ("whole-job statement", "count", "total ms in execute"), title)
    for number, check in enumerate(probe["checks"], start=1):
        found = ", ".join(f"{name} {count}" for name, count in check.items())
        print(f"check, whole job run {number}: {found} (expected {args.due} each)")


def print_summaries(probe: dict) -> None:
    print(
        f"\nsummaries: {probe['projects']} projects; reference = one GROUP BY computing the same "
        "counts; store = aggregate + reports + events + their live push; job = store + every "
        f"owner's email (locmem, inline); emails sent by the job runs: {probe['emails']}"
    )
    reference, queries = probe["reference_ms"], probe["queries"]
    rows = [_row("store (all projects)", probe["store_ms"], reference, queries["store"])]
    rows.append(_row("whole job (+ emails)", probe["job_ms"], reference, queries["job"]))
    print_table(rows, HEADERS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = run(args)
    setup = result["setup"]
    seeded = f"reseeded in {setup['seconds']:.1f} s" if setup["reseeded"] else "reused"
    print(
        f"jobs: {args.tasks} tasks in {args.projects} projects, {args.users} users, {args.due} "
        f"due within 24 h; database {args.database} ({seeded}, kept); Python "
        f"{platform.python_version()}; {_procs.machine()}"
    )
    print_reminders(result["reminders"], args)
    print_summaries(result["summaries"])
    errors = result["reminders"]["errors"] + result["summaries"]["errors"]
    for error in errors:
        print(f"ERROR: {error}")
    return 1 if errors else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench jobs", description=__doc__)
    add = parser.add_argument
    add("--tasks", type=int, default=1_000_000, help="tasks in the database (default 1000000)")
    add("--due", type=int, default=10_000, help="of which due for a reminder (default 10000)")
    add("--projects", type=int, default=10000, help="projects they belong to (default 10000)")
    add("--users", type=int, default=1000, help="users, all with an email (default 1000)")
    add("--runs", type=int, default=3, help="timed runs of each (default 3)")
    add("--warmup", type=int, default=1, help="uncounted claim/reference runs first (default 1)")
    add("--database", default=DATABASE, help=f"bench database (default {DATABASE})")
    args = parser.parse_args(argv)
    if min(args.tasks, args.due, args.projects, args.users, args.runs) < 1 or args.warmup < 0:
        parser.error("counts and --runs must be at least 1, --warmup at least 0")
    if args.due > args.tasks:
        parser.error("--due cannot exceed --tasks")
    return args


if __name__ == "__main__":
    sys.exit(main())
