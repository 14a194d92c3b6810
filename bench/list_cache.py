"""Cached /tasks/ pages under load vs a bare ASGI app; the uncached walk vs PostgreSQL.

Part 1, over loopback HTTP, each server one uvicorn process with the same options, loaded by
wrk (fixed connections for a fixed time per run, every answer checked: 200 and X-Cache hit),
the four taking turns by round, for a user who is a member of every seeded project:
  project       GET /tasks/?project=ID&page_size=50 on the tasks function after a warm-up
                request that fills the cache: the hit path in front of Django, whose audience
                is the project's members.
  all           GET /tasks/?page_size=50: the unfiltered page of a user in every project.
  project bare, all bare
                the same GETs on bench/_list_cache_bare.py (the same JWT check, the hit path's
                two Redis round trips, the same bytes): the limit. Checked to serve them first.
Goal: each >= 0.7 x its bare in requests/s, p99 <= 2 x.
Part 2, the uncached walk: a PATCH of a task, then every task in pages of 200 (every page a
miss, one at a time on one kept-alive connection), beside PostgreSQL's JSON of every task in one
statement (bench._list_cache_json.reference_sql) from this process; goal: within 3 x, and the
walk's rows equal PostgreSQL's. Part 3 (bench/_list_cache_json.py): the same JSON in-process.
Database: taskwire_bench_list (or --database; kept, reseeded when the counts differ); Redis:
this run's own prefix, deleted at the end.
"""

import argparse
import json
import platform
import sys
import time
from functools import partial
from http.client import HTTPConnection
from urllib.parse import urlsplit

import httpx
import psycopg
import redis
import uvicorn

from bench import _procs, _wrk, median, print_problems, print_table, taking_turns, timed, verdict

DATABASE = "taskwire_bench_list"
PAGE_SIZE, WALK_PAGE_SIZE = 50, 200
REQUESTS_GOAL, P99_GOAL, WALK_GOAL = 0.7, 2.0, 3.0
LOAD_HEADERS = ("candidate", "req/s", "p50 ms", "p99 ms", "max ms", "requests", "errors")
GOAL_HEADERS = ("page", "req/s ratio", "p99 ratio", "goal")
WALK_HEADERS = ("measurement", "pages", "candidate ms", "PostgreSQL ms", "ratio", "goal")


def queries(seed: dict) -> dict[str, str]:
    """page -> its query string."""
    every = f"page_size={PAGE_SIZE}"
    return {"project": f"project={seed['project']}&{every}", "all": every}


def start_servers(started: _procs.Servers, env: dict, seed: dict, http: httpx.Client) -> dict:
    """The tasks function, then the bare app on the bytes it answers for each page; two answers
    of each decide that it is a hit."""
    servers = {"tasks": started.uvicorn("tasks", "functions.tasks.handler:application", env)}
    pages, bodies = {}, {}
    with redis.Redis.from_url(_procs.REDIS_URL) as client:
        for page, query in queries(seed).items():
            url = f"{servers['tasks'].url}/tasks/?{query}"
            http.get(url).raise_for_status()
            answer = http.get(url).raise_for_status()
            if answer.headers.get("x-cache") != "hit":
                raise RuntimeError(f"{url} answered X-Cache {answer.headers.get('x-cache')} twice")
            page_key = f"{env['REDIS_PREFIX']}:bench:bare-{page}"
            client.set(page_key, answer.content)
            pages[query], bodies[query] = [seed["hit_keys"][page], page_key], answer.content
    bare_env = {**env, "LIST_BENCH_PAGES": json.dumps(pages)}
    servers["bare"] = started.uvicorn("bare", "bench._list_cache_bare:app", bare_env)
    for query, body in bodies.items():
        if http.get(f"{servers['bare'].url}/tasks/?{query}").raise_for_status().content != body:
            raise RuntimeError(f"the bare app does not serve the cached page of {query}")
    return servers


def load(servers: dict, seed: dict, args: argparse.Namespace) -> dict[str, list[_wrk.LoadResult]]:
    """A warm-up run of each (uncounted), then `rounds` runs each, the order rotating. Beside
    each page and its bare: "project 304", the project page with `If-None-Match: <its ETag>`,
    which the hit path answers 304 without the page."""
    url = f"{servers['tasks'].url}/tasks/?{queries(seed)['project']}"
    headers = {"Authorization": f"Bearer {seed['token']}"}
    tag = httpx.get(url, headers=headers, timeout=30).headers["etag"]
    if_none_match = f"wrk.headers[\"If-None-Match\"] = '{tag}'\n"

    def once(page: str, server: str, status: int, seconds: int) -> _wrk.LoadResult:
        # A server works off its backlog after wrk stops: the next run waits for it.
        _procs.wait_idle([each.pid for each in servers.values()])
        url = f"{servers[server].url}/tasks/?{queries(seed)[page]}"
        return _wrk.run_wrk(
            url, seed["token"], seconds=seconds, connections=args.connections,
            threads=args.threads, cache="hit", status=status,
            request_lua=if_none_match if status == 304 else "",
        )  # fmt: skip

    sides = {name: (page, server, 200) for page in queries(seed)
             for name, server in ((page, "tasks"), (f"{page} bare", "bare"))}  # fmt: skip
    sides["project 304"] = ("project", "tasks", 304)
    for side in sides.values() if args.warmup else []:
        once(*side, args.warmup)
    measures = {name: partial(once, *side, args.duration) for name, side in sides.items()}
    return taking_turns(measures, args.rounds)


def walk(http: httpx.Client, base: str, task_id: int, number: int) -> tuple[float, list]:
    """PATCH a task (every page is then a miss), then GET every page of WALK_PAGE_SIZE, one at a
    time, on one kept-alive http.client connection (httpx costs the candidate more per request
    than the reference's one statement), reading only each page's head for its `next` link
    while timed: (ms of the walk, the rows, parsed after it)."""
    patched = http.patch(f"{base}/tasks/{task_id}/", json={"title": f"list_cache walk {number}"})
    patched.raise_for_status()
    place, headers = urlsplit(base), {"Authorization": http.headers["authorization"]}
    connection = HTTPConnection(place.netloc, timeout=30)
    bodies, url = [], f"{base}/tasks/?page_size={WALK_PAGE_SIZE}"
    started = time.perf_counter()
    while url:
        connection.request("GET", url.removeprefix(base), headers=headers)
        answer = connection.getresponse()
        bodies.append(body := answer.read())
        if answer.status != 200 or answer.getheader("x-cache") != "miss":
            raise RuntimeError(f"{url}: {answer.status}, X-Cache {answer.getheader('x-cache')}")
        # the page's links come before its rows (common.api.pagination.render_page)
        url = json.loads(body[: body.index(b',"results":')] + b"}")["next"]
    elapsed = (time.perf_counter() - started) * 1000
    connection.close()
    return elapsed, [row for body in bodies for row in json.loads(body)["results"]]


def walks(http: httpx.Client, base: str, env: dict, task: int, args: argparse.Namespace) -> dict:
    """`runs` walks beside `runs` PostgreSQL builds, taking turns, after one walk checked equal
    to PostgreSQL's rows; {"walk_ms", "postgres_ms", "pages", "rows"}."""
    query = _procs.call("bench._list_cache_json:reference_sql", env)
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as db:
        rows = walk(http, base, task, 0)[1]
        if rows != json.loads(db.execute(query).fetchone()[0]):
            raise AssertionError("the walk's rows and PostgreSQL's differ")
        numbers = iter(range(1, args.runs + 1))
        measures = {
            "walk_ms": lambda: walk(http, base, task, next(numbers))[0],
            "postgres_ms": lambda: timed(lambda: db.execute(query).fetchone())[0],
        }
        samples = taking_turns(measures, args.runs)
    return {**samples, "pages": -(-len(rows) // WALK_PAGE_SIZE), "rows": len(rows)}


def run(args: argparse.Namespace) -> dict:
    """Every part; {"load", "walk", "json", "problems", "reseeded"}."""
    with _procs.session("list", args.database) as session:
        counts = {"tasks": args.tasks, "projects": args.projects, "users": args.users}
        seed = _procs.call("bench._seed:tasks", session.env, **counts)
        headers = {"Authorization": f"Bearer {seed['token']}"}
        with httpx.Client(headers=headers, timeout=30) as http:
            servers = start_servers(session.servers, session.env, seed, http)
            results = load(servers, seed, args)
            walked = walks(http, servers["tasks"].url, session.env, seed["task"], args)
        session.servers.stop()
        json_call = "bench._list_cache_json:measure"
        probe = _procs.call(json_call, session.env, runs=args.runs, breakdown=args.profile)
    return {"load": results, "walk": walked, "json": probe,
            "problems": session.servers.found, "reseeded": seed["reseeded"]}  # fmt: skip


def ratios(results: dict[str, list[_wrk.LoadResult]]) -> dict[str, tuple[float, float]]:
    """page -> (its req/s / its bare's, its p99 / its bare's), medians of the rounds; and the
    304 hit beside the 200 hit of the same page."""
    rps = {name: median(r.rps for r in runs) for name, runs in results.items()}
    p99 = {name: median(r.p99_ms for r in runs) for name, runs in results.items()}
    pairs = {page: (page, f"{page} bare") for page in results if f"{page} bare" in results}
    if "project 304" in results:
        pairs["project 304 / project"] = ("project 304", "project")
    return {
        name: (rps[ours] / rps[theirs], p99[ours] / p99[theirs])
        for name, (ours, theirs) in pairs.items()
    }


def report(result: dict, args: argparse.Namespace) -> None:
    rows = []
    for name, runs in result["load"].items():
        medians = [median(getattr(r, key) for r in runs) for key in ("rps", "p50_ms", "p99_ms")]
        medians.append(max(r.max_ms for r in runs))
        counts = [sum(r.requests for r in runs), sum(r.errors for r in runs)]
        rows.append([name, *(f"{value:.1f}" for value in medians), *counts])
    print_table(rows, LOAD_HEADERS, f"load: medians of {args.rounds} round(s)")
    rows = []
    for page, (rps, p99) in ratios(result["load"]).items():
        if " / " in page:
            rows.append([page, f"{rps:.2f}", f"{p99:.2f}", "(none set)"])
            continue
        met = rps >= REQUESTS_GOAL and p99 <= P99_GOAL
        rows.append(
            [page, f"{rps:.2f}", f"{p99:.2f}", f">= {REQUESTS_GOAL}, <= {P99_GOAL}: {verdict(met)}"]
        )
    print_table(rows, GOAL_HEADERS, "cached / bare (and the 304 hit / the 200 hit)")
    walked, probe = result["walk"], result["json"]
    ours, theirs = median(walked["walk_ms"]), median(walked["postgres_ms"])
    rows = [[f"walk of {walked['rows']} tasks after a write, HTTP", walked["pages"],
             f"{ours:.1f}", f"{theirs:.1f}", f"{ours / theirs:.2f}",
             f"<= {WALK_GOAL}: {verdict(ours / theirs <= WALK_GOAL)}"]]  # fmt: skip
    for name, size in (("all tasks", "all"), ("page of 200 + count", "page")):
        ours, theirs = median(probe[size]["django_ms"]), median(probe[size]["postgres_ms"])
        rows.append(
            [f"{name}, in-process", 1, f"{ours:.1f}", f"{theirs:.1f}", f"{ours / theirs:.2f}", ""]
        )
    print_table(rows, WALK_HEADERS, f"uncached, medians of {args.runs}")
    if "profile" in probe:
        rows = [[name, n, f"{own:.1f}", f"{cum:.1f}"] for name, n, own, cum in probe["profile"]]
        title = "cProfile of one in-process build of all tasks"
        print_table(rows, ("function", "calls", "own ms", "cumulative ms"), title)
    print_problems(result["problems"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not _wrk.available():
        print("list_cache needs wrk on PATH (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    print(
        f"list_cache: {args.tasks} tasks in {args.projects} projects; Python "
        f"{platform.python_version()}, uvicorn {uvicorn.__version__}; {_wrk.version()}, "
        f"{args.connections} connections, {args.rounds} x {args.duration} s; {_procs.machine()}"
    )
    result = run(args)
    report(result, args)
    print(f"database {args.database}: {'reseeded' if result['reseeded'] else 'reused'}, kept")
    print(f"at the end: {_procs.machine()}")
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
    add("--connections", type=int, default=32, help="wrk connections (default 32)")
    add("--threads", type=int, default=1, help="wrk threads (default 1)")
    add("--runs", type=int, default=7, help="timed walks and JSON builds (default 7)")
    add("--database", default=DATABASE, help=f"bench database (default {DATABASE})")
    add("--profile", action="store_true", help="profile the in-process build of all tasks")
    args = parser.parse_args(argv)
    if min(args.tasks, args.projects, args.users, args.duration, args.rounds, args.runs) < 1:
        parser.error("counts, --duration, --rounds and --runs must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(main())
