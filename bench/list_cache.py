"""Cached /tasks/ under load vs a bare ASGI app and the uncached path; its JSON vs PostgreSQL's.

Part 1, over loopback HTTP, each server one uvicorn process with uvicorn's defaults (auto loop and
HTTP parser: uvloop and httptools when installed; the header says which), access log off. Load:
wrk, a fixed number of connections for a fixed time per run, every response checked (status 200
and the expected X-Cache; anything else counts as an error). Candidates, alternating by round:
  cached    GET /tasks/?page_size=50 on `functions.tasks.handler:application`, after a warm-up
            request that fills the cache: answered by the ASGI hit path (common.cache.frontend).
  bare      the same GET on bench/_list_cache_bare.py: the least that serves those bytes (JWT
            check, two Redis round trips like the real path's, strip the stamp, send), the limit.
  uncached  the same GET with `&nonce=N` unique per request: every request misses the page cache
            (the filters ignore the parameter, the cache key does not): the ASGI layer asks
            Redis, misses, and Django answers from PostgreSQL and stores the page, as on any miss.
Goal: cached >= 0.5 x bare in requests/s. The bare app serves a copy, under a key of its own,
of the exact bytes the real app cached (checked identical before the runs).

Part 2, in a separate process (bench/_list_cache_serialize.py): every task (default 10,000)
as JSON through the view's code path (TaskSerializer + JSONRenderer, ORM query included) beside
one SQL statement in which PostgreSQL builds the same JSON, fetched as text; likewise for a page
of 200; and the uncached GET /tasks/?page_size=200 over HTTP, one request at a time.
Goal: the 10k list within 2.5 x PostgreSQL; when missed, a cProfile of the Django path is printed.

Database: taskwire_listbench on 127.0.0.1 (or --database; created if missing, kept with its data,
reseeded when the counts differ). Redis: a prefix of this run's own, deleted at the end.
Times are reported, never asserted.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from bench import _list_cache_load as load
from bench import _list_cache_servers as procs
from bench import print_table

TASKS_APP = "functions.tasks.handler:application"
BARE_APP = "bench._list_cache_bare:app"
LIST_PATH = "/tasks/?page_size=50"
PAGE_200_PATH = "/tasks/?page_size=200"
REQUESTS_GOAL = 0.5  # cached >= 0.5 x bare, requests/s
JSON_GOAL = 2.5  # Django's 10k list within 2.5 x PostgreSQL's
PROBE_TIMEOUT_S = 600
LOAD_HEADERS = (
    "candidate",
    "req/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "requests",
    "errors",
    "of which wrong X-Cache",
)
RATIO_HEADERS = ("ratio", "value", "goal", "met")
JSON_HEADERS = (
    "measurement",
    "tasks",
    "KiB",
    "Django median ms",
    "Django min ms",
    "PostgreSQL median ms",
    "PostgreSQL min ms",
    "ratio",
    "goal",
    "met",
)
PROFILE_HEADERS = ("function", "calls", "own ms", "cumulative ms")


@dataclass
class Candidate:
    name: str
    server: str
    expect: str  # the X-Cache every answer must carry
    nonce: bool
    results: list[load.LoadResult] = field(default_factory=list)


def candidates() -> list[Candidate]:
    return [
        Candidate("cached", "cached", "hit", nonce=False),
        Candidate("bare", "bare", "hit", nonce=False),
        Candidate("uncached", "uncached", "miss", nonce=True),
    ]


# -- set-up ---------------------------------------------------------------------------------------


def server_specs(env: dict[str, str]) -> dict[str, tuple[str, dict[str, str]]]:
    """name -> (ASGI app, environment); two tasks processes so that neither run warms the other."""
    prefix = env["REDIS_PREFIX"]
    bare_env = {
        **env,
        "LIST_BENCH_VERSION_KEY": f"{prefix}:bench:bare-version",
        "LIST_BENCH_PAGE_KEY": bare_page_key(prefix),
    }
    return {"cached": (TASKS_APP, env), "uncached": (TASKS_APP, env), "bare": (BARE_APP, bare_env)}


def bare_page_key(prefix: str) -> str:
    return f"{prefix}:bench:bare-page"


def get(url: str, token: str) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def warm_cache(url: str, token: str) -> bytes:
    """GET until X-Cache says hit (the first fills the cache); the page's bytes."""
    for _ in range(3):
        answer = get(url, token)
        answer.raise_for_status()
        if answer.headers.get("x-cache") == "hit":
            return answer.content
    raise RuntimeError(f"{url} never answered X-Cache: hit")


def copy_page_for_bare(prefix: str, page: bytes, bare_url: str, token: str) -> None:
    """Copy the one cached page's stored bytes to the bare app's key; check it serves them."""
    client = procs.redis_client()
    try:
        keys = procs.page_keys(client, prefix)
        if len(keys) != 1:
            raise RuntimeError(f"expected one cached /tasks/ page, found {len(keys)}")
        client.set(bare_page_key(prefix), client.get(keys[0]))
        client.set(f"{prefix}:bench:bare-version", 1)  # the bare app reads one version too
    finally:
        client.close()
    answer = get(bare_url, token)
    if answer.status_code != 200 or answer.content != page:
        raise RuntimeError(f"the bare app does not serve the cached page ({answer.status_code})")


# -- part 1: load ---------------------------------------------------------------------------------


def load_once(
    candidate: Candidate, url: str, token: str, args: argparse.Namespace, seconds: int
) -> load.LoadResult:
    return load.run_wrk(
        url,
        token,
        expect=candidate.expect,
        nonce=candidate.nonce,
        connections=args.connections,
        threads=args.threads,
        seconds=seconds,
    )


def run_load(servers: dict, token: str, args: argparse.Namespace) -> list[Candidate]:
    """Warm each candidate up (uncounted), then `rounds` runs each, the order rotating."""
    runs = candidates()
    urls = {c.name: f"{servers[c.server].url}{LIST_PATH}" for c in runs}
    if args.warmup:
        for candidate in runs:
            load_once(candidate, urls[candidate.name], token, args, args.warmup)
    for round_ in range(args.rounds):
        shift = round_ % len(runs)
        for candidate in runs[shift:] + runs[:shift]:
            result = load_once(candidate, urls[candidate.name], token, args, args.duration)
            candidate.results.append(result)
    return runs


def load_rows(runs: list[Candidate]) -> list[list[str]]:
    """Per candidate: medians over rounds (req/s and latencies), totals of the counts."""
    rows = []
    for c in runs:
        rows.append(
            [
                c.name,
                f"{statistics.median(r.rps for r in c.results):.0f}",
                f"{statistics.median(r.p50_ms for r in c.results):.2f}",
                f"{statistics.median(r.p99_ms for r in c.results):.2f}",
                f"{max(r.max_ms for r in c.results):.1f}",
                str(sum(r.requests for r in c.results)),
                str(sum(r.errors for r in c.results)),
                str(sum(r.unexpected for r in c.results)),
            ]
        )
    return rows


def median_of(runs: list[Candidate], name: str, attribute: str) -> float:
    candidate = next(c for c in runs if c.name == name)
    return statistics.median(getattr(r, attribute) for r in candidate.results)


def ratio_rows(runs: list[Candidate]) -> list[list[str]]:
    """The ratios of the medians; only the first has a goal."""
    rps = {c.name: median_of(runs, c.name, "rps") for c in runs}
    p99 = {c.name: median_of(runs, c.name, "p99_ms") for c in runs}
    goal = rps["cached"] / rps["bare"]
    return [
        ["cached / bare, req/s", f"{goal:.2f}", f">= {REQUESTS_GOAL}", _yes(goal >= REQUESTS_GOAL)],
        ["cached / bare, p99", f"{p99['cached'] / p99['bare']:.2f}", "", ""],
        ["cached / uncached, req/s", f"{rps['cached'] / rps['uncached']:.2f}", "", ""],
        ["uncached / cached, p99", f"{p99['uncached'] / p99['cached']:.2f}", "", ""],
    ]


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


# -- part 2: JSON ---------------------------------------------------------------------------------


def sequential_ms(url: str, token: str, runs: int) -> list[float]:
    """`runs` uncached GETs of `url`, one at a time (two uncounted first); each one's ms."""
    samples = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=30) as client:
        for number in range(runs + 2):
            started = time.perf_counter()
            answer = client.get(f"{url}&nonce=seq-{number}")
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code != 200 or answer.headers.get("x-cache") != "miss":
                raise RuntimeError(f"uncached GET: {answer.status_code} {answer.headers}")
            if number >= 2:
                samples.append(elapsed)
    return samples


def json_row(
    name: str, tasks: int, nbytes: int, ours: list[float], theirs: list[float], goal: float | None
) -> list[str]:
    ratio = statistics.median(ours) / statistics.median(theirs)
    verdict = "" if goal is None else _yes(ratio <= goal)
    return [
        name,
        str(tasks),
        f"{nbytes / 1024:.0f}",
        f"{statistics.median(ours):.1f}",
        f"{min(ours):.1f}",
        f"{statistics.median(theirs):.1f}",
        f"{min(theirs):.1f}",
        f"{ratio:.2f}",
        "" if goal is None else f"<= {goal}",
        verdict,
    ]


def json_rows(probe: dict, http_ms: list[float]) -> list[list[str]]:
    every, page = probe["all"], probe["page"]
    page_tasks = min(200, probe["tasks"])
    return [
        json_row(
            "all tasks, in-process",
            probe["tasks"],
            every["bytes"],
            every["django_ms"],
            every["postgres_ms"],
            JSON_GOAL,
        ),
        json_row(
            "page of 200 + count, in-process",
            page_tasks,
            page["bytes"],
            page["django_ms"],
            page["postgres_ms"],
            None,
        ),
        json_row(
            "GET page_size=200 uncached, HTTP",
            page_tasks,
            page["bytes"],
            http_ms,
            page["postgres_ms"],
            None,
        ),
    ]


def print_phases(phases: dict[str, float], postgres_ms: list[float], runs: int) -> None:
    """The Django path over all tasks, step by step (unprofiled), beside PostgreSQL's total."""
    reference = statistics.median(postgres_ms)
    print(f"\nthe Django path over all tasks, step by step (unprofiled, median of {runs})")
    steps = [*phases.items(), ("sum of the steps", sum(phases.values()))]
    rows = [[name, f"{ms:.1f}", f"{ms / reference:.2f}"] for name, ms in steps]
    print_table(rows, ("step", "median ms", "x PostgreSQL total"))


def print_profile(profile: dict) -> None:
    print(
        f"\ncProfile of one Django run over all tasks: {profile['wall_ms']:.0f} ms under the "
        f"profiler (its overhead included), {profile['total_own_ms']:.0f} ms of own time"
    )
    for title, key in (("own time", "by_own"), ("cumulative time", "by_cumulative")):
        print(f"\ntop {len(profile[key])} by {title}")
        rows = [
            [name, str(calls), f"{own:.1f}", f"{cum:.1f}"] for name, calls, own, cum in profile[key]
        ]
        print_table(rows, PROFILE_HEADERS)


# -- the run --------------------------------------------------------------------------------------


def print_header(args: argparse.Namespace, loop: str) -> None:
    http = "httptools" if _importable("httptools") else "h11"
    print(
        f"list_cache: {args.tasks} tasks in {args.projects} projects; Python "
        f"{platform.python_version()}; uvicorn {uvicorn.__version__}, one process per server, "
        f"loop {loop}, http {http} (uvicorn's auto choice)"
    )
    print(
        f"load: {load.wrk_version()}, {args.threads} thread(s), {args.connections} connections, "
        f"{args.duration} s per run, {args.rounds} round(s) rotating the order, {args.warmup} s "
        f"uncounted warm-up each; GET {LIST_PATH}; medians over rounds"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {_load_average()} before the runs")


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def print_problems(problems: dict[str, list[str]]) -> None:
    if not any(problems.values()):
        print("\nserver logs: no warning, error or traceback")
        return
    print("\nserver logs: warnings, errors or tracebacks")
    for name, lines in problems.items():
        for line in lines:
            print(f"  {name}: {line}")


def part_one(servers: dict, token: str, prefix: str, args) -> tuple[list[Candidate], list[float]]:
    page = warm_cache(f"{servers['cached'].url}{LIST_PATH}", token)
    copy_page_for_bare(prefix, page, f"{servers['bare'].url}{LIST_PATH}", token)
    print_header(args, procs.wait_until_healthy(servers["bare"]))
    runs = run_load(servers, token, args)
    http_ms = sequential_ms(f"{servers['uncached'].url}{PAGE_200_PATH}", token, args.runs)
    return runs, http_ms


def run(args: argparse.Namespace) -> int:
    prefix = procs.redis_prefix()
    env = procs.server_env(prefix, args.database)
    setup = procs.prepare_database(args.tasks, args.projects, args.users, env)
    try:
        with tempfile.TemporaryDirectory(prefix="list-cache-logs-") as log_dir:
            with procs.running(server_specs(env), Path(log_dir)) as servers:
                runs, http_ms = part_one(servers, setup["token"], prefix, args)
            problems = procs.log_problems(servers)
        probe_args = ["--runs", str(args.runs), "--goal", str(JSON_GOAL)]
        probe_args += ["--profile"] if args.profile else []
        probe = procs.run_module("bench._list_cache_serialize", probe_args, env, PROBE_TIMEOUT_S)
    finally:
        client = procs.redis_client()
        procs.drop_prefix(client, prefix)
        client.close()
    print()
    print_table(load_rows(runs), LOAD_HEADERS)
    print()
    print_table(ratio_rows(runs), RATIO_HEADERS)
    print(f"\nJSON of the task list (median of {args.runs} runs each; ratio = Django / PostgreSQL)")
    print_table(json_rows(probe, http_ms), JSON_HEADERS)
    if "profile" in probe:
        print_phases(probe["phases"], probe["all"]["postgres_ms"], args.runs)
        print(
            f"aside: the same SQL rows on a plain psycopg connection (its C loaders; Django's "
            f"connections parse timestamptz in Python): {probe['plain_rows_ms']:.1f} ms"
        )
        print_profile(probe["profile"])
    print_problems(problems)
    print(f"load average after the runs: {_load_average()} (other processes share the CPUs)")
    db_note = "reseeded" if setup["reseeded"] else "reused"
    print(f"\ndatabase {args.database}: {db_note}, kept; Redis prefix {prefix}: deleted")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench list_cache", description=__doc__)
    add = parser.add_argument
    add("--tasks", type=int, default=10_000, help="tasks in the database (default 10000)")
    add("--projects", type=int, default=20, help="projects they belong to (default 20)")
    add("--users", type=int, default=25, help="users they are assigned to (default 25)")
    add("--duration", type=int, default=10, help="seconds per load run (default 10)")
    add("--rounds", type=int, default=2, help="load runs of each candidate (default 2)")
    add("--warmup", type=int, default=2, help="uncounted seconds of load first (default 2)")
    add("--connections", type=int, default=64, help="wrk connections (default 64)")
    add("--threads", type=int, default=1, help="wrk threads (default 1)")
    add("--runs", type=int, default=7, help="timed runs of each JSON build (default 7)")
    add("--database", default=procs.DATABASE, help=f"bench database (default {procs.DATABASE})")
    add("--profile", action="store_true", help="profile the Django JSON even if the goal is met")
    args = parser.parse_args(argv)
    if min(args.tasks, args.projects, args.users, args.duration, args.rounds, args.runs) < 1:
        parser.error("counts, --duration, --rounds and --runs must be at least 1")
    if args.connections < args.threads or args.warmup < 0:
        parser.error("--connections must be at least --threads, --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if load.wrk_path() is None:
        print("list_cache needs wrk on PATH (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
