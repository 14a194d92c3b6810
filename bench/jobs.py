"""The scheduled jobs on a large database: reminders at SES's pace, summaries, list growth.

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
reference the minimal write (bench._jobs_child.MINIMAL_WRITE_SQL: the same GROUP BY inserted as
the reports and one event row per report, one statement, committed), the counts checked against
a read-only GROUP BY. Goal: store within 1.5 x the minimal write. Beside the wall times, each
side's CPU: the child's and its PostgreSQL backend's (/proc/PID/schedstat; not Redis's), steadier
than wall time on a shared machine.

Pace (bench._jobs_pace): real Celery workers on RabbitMQ (--workers counts, each a process of
--concurrency threads) sending the due reminders to an SES stub at --rate R and --latency-ms L:
wall time beside due / R; goals: the most workers sustain >= 0.9 R, one worker is bounded by
L (concurrency / L per second), no throttling reaches an outcome, each task's email accepted
once; then the same with one worker SIGKILLed mid-run (a duplicate only for a send in flight).

Growth (bench._growth_child, its own database taskwire_bench_jobs_growth): the uncached task
list page at each --growth size over 1,000 projects; goal: page 1s within 1.5 x from the
smallest size to the largest.
"""

import argparse
import platform
import sys

from bench import _jobs_pace, _procs, median, print_table, verdict

DATABASE = "taskwire_bench_jobs"
GOAL = 2.0  # candidate within 2 x the reference
STORE_GOAL = 1.5  # summaries' store within 1.5 x the minimal write
PACE_GOAL = 0.9  # the most workers sustain 0.9 R
GROWTH_GOAL = 1.5  # a page 1 at the largest size within 1.5 x the smallest's
CHILD = "bench._jobs_child"
NOW_ISO = "2025-06-02T12:00:00+00:00"  # bench._jobs_child.NOW, the seed's "now"
GROWTH_CHILD = "bench._growth_child"
PARTS = ("reminders", "pace", "summaries", "growth")
HEADERS = ("measure", "candidate ms", "reference ms", "ratio", "goal", "met", "candidate queries")


def run(args: argparse.Namespace) -> dict:
    """Seed, then the parts asked for: {"setup", "reminders", "pace", "summaries", "growth"},
    each the child's data (None for a part not run)."""
    result: dict = dict.fromkeys(("setup", *PARTS))
    # Seeding a million tasks is one statement of minutes, beyond the production timeout.
    if set(args.parts) - {"growth"}:
        with _procs.session("jobs", args.database) as session:
            env = {**session.env, "DB_STATEMENT_TIMEOUT_MS": "600000"}
            counts = {"tasks": args.tasks, "projects": args.projects, "users": args.users}
            result["setup"] = _procs.call(f"{CHILD}:prepare", env, **counts, due=args.due)
            if "reminders" in args.parts:
                result["reminders"] = _procs.call(
                    f"{CHILD}:reminders", env, due=args.due, runs=args.runs, warmup=args.warmup
                )
            if "pace" in args.parts:
                pace = _jobs_pace.Pace(
                    args.rate, args.latency_ms, args.concurrency, args.due, NOW_ISO
                )
                result["pace"] = _jobs_pace.run(
                    session,
                    pace,
                    args.workers,
                    args.kill_workers,
                    reset=lambda: _procs.call(f"{CHILD}:reset_reminders", env),
                )
                result["pace"]["problems"] = session.servers.problems()
            if "summaries" in args.parts:
                result["summaries"] = _procs.call(
                    f"{CHILD}:summaries", env, runs=args.runs, job_runs=args.summary_job_runs
                )
    if "growth" in args.parts:
        result["growth"] = growth(args)
    return result


def growth(args: argparse.Namespace) -> list[dict]:
    """The list pages at each size, the table grown in place: [{"tasks", "seeded_s", pages}]."""
    sizes = []
    with _procs.session("jobs-growth", args.growth_database) as session:
        env = {**session.env, "DB_STATEMENT_TIMEOUT_MS": "600000"}
        for size in args.growth:
            grown = _procs.call(f"{GROWTH_CHILD}:grow", env, tasks=size)
            pages = _procs.call(f"{GROWTH_CHILD}:pages", env, runs=args.page_runs, warmup=3)
            sizes.append({"tasks": grown["tasks"], "seeded_s": grown["seconds"], "pages": pages})
    return sizes


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
        f"\nsummaries: {probe['projects']} projects; reference = the minimal write (the GROUP BY "
        "inserted as the reports, one event row each, committed); store = aggregate + reports "
        "+ events + their live push; job = store + every owner's email (locmem, inline); "
        f"emails sent by the job runs: {probe['emails']}; the read-only GROUP BY alone: "
        f"{probe['read_ms']:.1f} ms"
    )
    reference, queries = probe["reference_ms"], probe["queries"]
    ratio = probe["store_ms"] / reference
    met = [f"{ratio:.2f}", f"<= {STORE_GOAL:g}", verdict(ratio <= STORE_GOAL)]
    rows = [["store (all projects)", f"{probe['store_ms']:.1f}", f"{reference:.1f}", *met,
             str(queries["store"])]]  # fmt: skip
    if probe["store_cpu_ms"] is not None:  # None: PostgreSQL on another machine
        cpu, reference_cpu = median(probe["store_cpu_ms"]), median(probe["reference_cpu_ms"])
        rows.append(["store CPU (job + its backend)", f"{cpu:.1f}", f"{reference_cpu:.1f}",
                     f"{cpu / reference_cpu:.2f}", "", "", ""])  # fmt: skip
    if probe["job_ms"] is not None:
        ratio = probe["job_ms"] / reference
        rows.append(["whole job (+ emails)", f"{probe['job_ms']:.1f}", f"{reference:.1f}",
                     f"{ratio:.2f}", "", "", str(queries["job"])])  # fmt: skip
    print_table(rows, HEADERS)
    runs = [("store", "store_runs_ms"), ("reference", "reference_runs_ms")]
    runs += [("store CPU", "store_cpu_ms"), ("reference CPU", "reference_cpu_ms")]
    print("each run, ms: " + "; ".join(
        f"{name} {', '.join(f'{ms:.0f}' for ms in probe[key])}" for name, key in runs if probe[key]
    ))  # fmt: skip


def print_pace(pace: dict, args: argparse.Namespace) -> None:
    bound = args.concurrency / (args.latency_ms / 1000)
    print(
        f"\npace: {args.due} due reminders, SES stub at R = {args.rate:g}/s and L = "
        f"{args.latency_ms:g} ms; each worker a process of {args.concurrency} threads (bound by "
        f"L: {bound:g}/s); limit = due / R = {pace['limit_s']:.1f} s; ratio = wall / limit; "
        "sustained = accepted / (last - first acceptance) at the stub"
    )
    headers = ("workers", "wall s", "limit s", "ratio", "sustained /s", "x R", "goal", "met",
               "throttled answers", "throttled outcomes", "emailed", "twice",
               "not sent", "worker CPU ms/email", "PostgreSQL CPU ms/email",
               "stub CPU ms/email")  # fmt: skip
    rows = []
    most = max(args.workers)
    for run in pace["runs"]:
        rate = run["sustained_per_s"]
        if run["killed_after"] is not None:
            goal, met = "dup only in flight", set(run["tasks_twice"]) <= set(run["uncertain_tasks"])
            name = f"{run['workers']}, one killed after {run['killed_after']}"
        elif run["workers"] == most:
            goal, met, name = f">= {PACE_GOAL:g} R", rate >= PACE_GOAL * args.rate, str(most)
        elif run["workers"] == 1:
            goal, met, name = f"<= {bound:g}/s (L)", rate <= bound * 1.05, "1"
        else:
            goal, met, name = "", True, str(run["workers"])
        once = run["tasks_emailed"] == args.due and not run["tasks_more"]
        once = once and (run["killed_after"] is not None or not run["tasks_twice"])
        not_sent = sum(n for status, n in run["statuses"].items() if status != "sent")
        met = met and once and run["throttled_outcomes"] == 0 and not_sent == 0
        rows.append([name, f"{run['wall_s']:.1f}", f"{pace['limit_s']:.1f}",
                     f"{run['wall_s'] / pace['limit_s']:.2f}", f"{rate:.1f}",
                     f"{rate / args.rate:.2f}", goal, verdict(met), run["throttled_answers"],
                     run["throttled_outcomes"], run["tasks_emailed"], len(run["tasks_twice"]),
                     not_sent, f"{run['worker_cpu_ms_per_email']:.1f}",
                     f"{run['postgres_cpu_ms_per_email']:.1f}",
                     f"{run['stub_cpu_ms_per_email']:.2f}"])  # fmt: skip
    print_table(rows, headers)
    for name, lines in pace["problems"].items():
        if lines:
            print(f"{name}: {len(lines)} warning lines, first: {lines[0][:160]}")


def print_growth(sizes: list[dict]) -> None:
    print(
        "\nlist growth: the uncached task list page (TaskList.render_list: COUNT, page, JSON), "
        f"median ms; tasks over 1,000 projects; goal: page 1 at {sizes[-1]['tasks']} within "
        f"{GROWTH_GOAL:g} x at {sizes[0]['tasks']}"
    )
    names = list(sizes[0]["pages"])
    headers = ("tasks", *(f"{name} ms (COUNT / rows)" for name in names))
    rows = [[size["tasks"], *(_page_cell(size["pages"][name]) for name in names)] for size in sizes]
    first, last = sizes[0]["pages"], sizes[-1]["pages"]
    ratios = ["ratio", *(f"{last[n]['ms'] / first[n]['ms']:.2f}" for n in names)]
    goals = ["goal", *(f"<= {GROWTH_GOAL:g}" if "page 1" in n else "" for n in names)]
    met = ["met", *(verdict(last[n]["ms"] / first[n]["ms"] <= GROWTH_GOAL) if "page 1" in n
                    else "" for n in names)]  # fmt: skip
    print_table([*rows, ratios, goals, met], headers)
    for name in names:
        counts = ", ".join(str(size["pages"][name]["count"]) for size in sizes)
        print(f"{name}: count {counts}; statements at {sizes[-1]['tasks']}:")
        for sql, ms in last[name]["statements"]:
            print(f"  {ms:8.2f} ms  {sql}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = run(args)
    if setup := result["setup"]:
        seeded = f"reseeded in {setup['seconds']:.1f} s" if setup["reseeded"] else "reused"
        print(
            f"jobs: {args.tasks} tasks in {args.projects} projects, {args.users} users, "
            f"{args.due} due within 24 h; database {args.database} ({seeded}, kept); Python "
            f"{platform.python_version()}; {_procs.machine()}"
        )
    if result["reminders"]:
        print_reminders(result["reminders"], args)
    if result["pace"]:
        print_pace(result["pace"], args)
    if result["summaries"]:
        print_summaries(result["summaries"])
    if result["growth"]:
        print_growth(result["growth"])
    errors = [
        e for part in ("reminders", "summaries") if result[part] for e in result[part]["errors"]
    ]
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
    add("--parts", type=_names, default=list(PARTS), help=f"of {','.join(PARTS)} (default all)")
    add("--summary-job-runs", type=int, default=1, help="summaries: whole jobs (default 1)")
    add("--rate", type=float, default=200.0, help="pace: the SES stub's rate R (default 200)")
    add("--latency-ms", type=float, default=40.0, help="pace: its latency L (default 40)")
    add("--concurrency", type=int, default=4, help="pace: threads per worker (default 4)")
    add("--workers", type=_counts, default=[1, 2, 4], help="pace: worker counts (default 1,2,4)")
    add("--kill-workers", type=int, default=4, help="pace: workers of the kill run (0: none)")
    add("--growth", type=_counts, default=[10_000, 100_000, 1_000_000],
        help="growth: table sizes (default 10000,100000,1000000)")  # fmt: skip
    add("--page-runs", type=int, default=15, help="growth: timed GETs per page (default 15)")
    add("--growth-database", default=f"{DATABASE}_growth", help="growth: its database")
    args = parser.parse_args(argv)
    if min(args.tasks, args.due, args.projects, args.users, args.runs) < 1 or args.warmup < 0:
        parser.error("counts and --runs must be at least 1, --warmup at least 0")
    if args.due > args.tasks:
        parser.error("--due cannot exceed --tasks")
    return args


def _page_cell(page: dict) -> str:
    return f"{page['ms']:.2f} ({page['count_ms']:.2f} / {page['rows_ms']:.2f})"


def _names(text: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    if unknown := set(names) - set(PARTS):
        raise argparse.ArgumentTypeError(f"unknown parts: {', '.join(sorted(unknown))}")
    return names


def _counts(text: str) -> list[int]:
    return [int(value) for value in text.split(",") if value]


if __name__ == "__main__":
    sys.exit(main())
