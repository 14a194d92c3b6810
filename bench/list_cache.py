"""Cached /tasks/ under load vs a bare ASGI app and the uncached path; its JSON vs PostgreSQL's.

Part 1, over loopback HTTP, each server one uvicorn process with the same options, loaded by
wrk (fixed connections for a fixed time per run, every answer checked: 200 and the expected
X-Cache). Candidates, taking turns by round:
  cached    GET /tasks/?page_size=50 on the tasks function after a warm-up request that fills
            the cache: answered by the ASGI hit path in front of Django.
  cached 304  the same GET with `If-None-Match: <the page's ETag>`: the hit path answers 304,
            without the page (X-Cache: hit).
  bare      the same GET on bench/_list_cache_bare.py (JWT check, the hit path's two Redis round
            trips, the same bytes): the limit. Checked to serve the cached body first.
  uncached  the same GET with `&due_after=<a moment in 1970>` unique per request: every request
            misses (the same rows, under a page key of its own: the cache keys only parameters
            the list reads), and Django answers from PostgreSQL.
Goal: cached >= 0.5 x bare in requests/s. Then the uncached GET /tasks/?page_size=200, one at a
time. Part 2 (bench/_list_cache_json.py): the view's JSON of every task and of a page of 200
beside PostgreSQL building it; goal: within 2.5 x. Database: taskwire_bench_list (or --database;
kept, reseeded when the counts differ); Redis: this run's own prefix, deleted at the end.
"""

import argparse
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import redis
import uvicorn

from bench import _procs, _wrk, median, print_problems, print_table, taking_turns, verdict

DATABASE = "taskwire_bench_list"
LIST_PATH = "/tasks/?page_size=50"
PAGE_200_PATH = "/tasks/?page_size=200"
REQUESTS_GOAL = 0.5  # cached >= 0.5 x bare, requests/s
JSON_GOAL = 2.5  # the list view's JSON of all tasks within 2.5 x PostgreSQL's
NONCE_LUA = """
function request()
  n = n + 1
  local run = math.floor(tonumber(tag) / 1000) % 1000000
  local moment = os.date("!%Y-%m-%dT%H:%M:%S", id * 10000000 + n)
  return wrk.format(nil, wrk.path .. "&due_after=" .. moment .. string.format(".%06dZ", run))
end
"""
# Set once per thread, not per request: wrk sends the same prepared request every time.
IF_NONE_MATCH_LUA = """
wrk.headers["If-None-Match"] = '{tag}'
"""
# candidate -> (server, status and X-Cache expected, request generator; `{tag}`: the page's ETag)
CANDIDATES = {"cached": ("cached", 200, "hit", ""), "bare": ("bare", 200, "hit", "")}
CANDIDATES["uncached"] = ("uncached", 200, "miss", NONCE_LUA)
CANDIDATES["cached 304"] = ("cached", 304, "hit", IF_NONE_MATCH_LUA)
LOAD_HEADERS = ("candidate", "req/s", "p50 ms", "p99 ms", "max ms", "requests", "errors")
JSON_HEADERS = ("measurement", "tasks", "KiB", "Django ms", "PostgreSQL ms", "ratio", "goal")


def _get(url: str, token: str) -> httpx.Response:
    answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    answer.raise_for_status()
    return answer


def start_servers(started: _procs.Servers, env: dict, seed: dict) -> dict[str, _procs.Server]:
    """The tasks function twice (neither warms the other), then the bare app on the bytes the
    cached one answers; two answers of the first decide that it is a hit."""
    servers = {
        name: started.uvicorn(name, "functions.tasks.handler:application", env)
        for name in ("cached", "uncached")
    }
    url = f"{servers['cached'].url}{LIST_PATH}"
    _get(url, seed["token"])
    page = _get(url, seed["token"])
    if page.headers.get("x-cache") != "hit":
        raise RuntimeError(f"{url} answered X-Cache {page.headers.get('x-cache')} twice")
    page_key = f"{env['REDIS_PREFIX']}:bench:bare-page"
    with redis.Redis.from_url(_procs.REDIS_URL) as client:
        client.set(page_key, page.content)
    keys = {"LIST_BENCH_KEYS": ",".join(seed["hit_keys"]), "LIST_BENCH_PAGE_KEY": page_key}
    servers["bare"] = started.uvicorn("bare", "bench._list_cache_bare:app", {**env, **keys})
    if _get(f"{servers['bare'].url}{LIST_PATH}", seed["token"]).content != page.content:
        raise RuntimeError("the bare app does not serve the cached page")
    return servers


def load(servers: dict, token: str, args: argparse.Namespace) -> dict[str, list[_wrk.LoadResult]]:
    """A warm-up run of each (uncounted), then `rounds` runs each, the order rotating."""
    tag = _get(f"{servers['cached'].url}{LIST_PATH}", token).headers["etag"]

    def once(name: str, seconds: int) -> _wrk.LoadResult:
        # The uncached server works off its backlog after wrk stops: the next run waits for it.
        _procs.wait_idle([each.pid for each in servers.values()])
        server, status, cache, lua = CANDIDATES[name]
        url = f"{servers[server].url}{LIST_PATH}"
        return _wrk.run_wrk(
            url, token, seconds=seconds, connections=args.connections, threads=args.threads,
            status=status, cache=cache, request_lua=lua.replace("{tag}", tag),
        )  # fmt: skip

    for name in CANDIDATES if args.warmup else []:
        once(name, args.warmup)
    measures = {name: partial(once, name, args.duration) for name in CANDIDATES}
    return taking_turns(measures, args.rounds)


def _unique_moment_in_1970(number: int) -> str:
    """A due_after every seeded task passes, unique to this request: a page key of its own."""
    moment = datetime.fromtimestamp(number, UTC) + timedelta(microseconds=time.time_ns() % 10**6)
    return moment.isoformat().replace("+00:00", "Z")


def sequential_ms(url: str, token: str, runs: int) -> list[float]:
    """`runs` uncached GETs of `url`, one at a time, after two uncounted; each one's ms."""
    samples = []
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for number in range(runs + 2):
            started = time.perf_counter()
            answer = client.get(f"{url}&due_after={_unique_moment_in_1970(number)}")
            samples.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200 or answer.headers.get("x-cache") != "miss":
                raise RuntimeError(f"uncached GET: {answer.status_code} {answer.headers}")
    return samples[2:]


def run(args: argparse.Namespace) -> dict:
    """Both parts; {"load", "http_ms", "json", "problems", "reseeded"}."""
    with _procs.session("list", args.database) as session:
        counts = {"tasks": args.tasks, "projects": args.projects, "users": args.users}
        seed = _procs.call("bench._seed:tasks", session.env, **counts)
        servers = start_servers(session.servers, session.env, seed)
        results = load(servers, seed["token"], args)
        page_url = f"{servers['uncached'].url}{PAGE_200_PATH}"
        http_ms = sequential_ms(page_url, seed["token"], args.runs)
        session.servers.stop()
        json_call = "bench._list_cache_json:measure"
        probe = _procs.call(json_call, session.env, runs=args.runs, breakdown=args.profile)
        every = probe["all"]
        missed = median(every["django_ms"]) > JSON_GOAL * median(every["postgres_ms"])
        if missed and not args.profile:  # the same again, with the breakdown of why
            probe = _procs.call(json_call, session.env, runs=args.runs, breakdown=True)
    return {"load": results, "http_ms": http_ms, "json": probe,
            "problems": session.servers.found, "reseeded": seed["reseeded"]}  # fmt: skip


def ratios(results: dict[str, list[_wrk.LoadResult]]) -> dict[str, float]:
    rps = {name: median(r.rps for r in runs) for name, runs in results.items()}
    p99 = {name: median(r.p99_ms for r in runs) for name, runs in results.items()}
    return {
        "cached / bare, req/s": rps["cached"] / rps["bare"],
        "cached / bare, p99": p99["cached"] / p99["bare"],
        "cached / uncached, req/s": rps["cached"] / rps["uncached"],
        "uncached / cached, p99": p99["uncached"] / p99["cached"],
        "cached 304 / cached 200, req/s": rps["cached 304"] / rps["cached"],
        "cached 304 / cached 200, p99": p99["cached 304"] / p99["cached"],
    }


def report(result: dict, args: argparse.Namespace) -> None:
    rows = []
    for name, runs in result["load"].items():
        medians = [median(getattr(r, key) for r in runs) for key in ("rps", "p50_ms", "p99_ms")]
        medians.append(max(r.max_ms for r in runs))
        counts = [sum(r.requests for r in runs), sum(r.errors for r in runs)]
        rows.append([name, *(f"{value:.1f}" for value in medians), *counts])
    print_table(rows, LOAD_HEADERS, f"load: medians of {args.rounds} round(s)")
    goal = ratios(result["load"])
    rows = [[name, f"{value:.2f}"] for name, value in goal.items()]
    rows[0] += [f">= {REQUESTS_GOAL}: {verdict(goal['cached / bare, req/s'] >= REQUESTS_GOAL)}"]
    print_table([row + [""] * (3 - len(row)) for row in rows], ("ratio", "value", "goal"))
    probe, page = result["json"], min(200, result["json"]["tasks"])
    rows = []
    for name, size, tasks, ours in (
        ("all tasks, in-process", "all", probe["tasks"], probe["all"]["django_ms"]),
        ("page of 200 + count, in-process", "page", page, probe["page"]["django_ms"]),
        ("GET page_size=200 uncached, HTTP", "page", page, result["http_ms"]),
    ):
        theirs = probe[size]["postgres_ms"]
        ratio = median(ours) / median(theirs)
        goal_text = f"<= {JSON_GOAL}: {verdict(ratio <= JSON_GOAL)}" if not rows else ""
        values = [f"{probe[size]['bytes'] / 1024:.0f}", f"{median(ours):.1f}"]
        values += [f"{median(theirs):.1f}", f"{ratio:.2f}", goal_text]
        rows.append([name, tasks, *values])
    print_table(rows, JSON_HEADERS, f"JSON of the task list, medians of {args.runs}")
    print_breakdown(probe)
    print_problems(result["problems"])


def print_breakdown(probe: dict) -> None:
    if "steps" in probe:
        rows = [[name, f"{ms:.1f}"] for name, ms in probe["steps"].items()]
        print_table(rows, ("serializer path over all tasks, step", "median ms"), "")
        rows = [[name, n, f"{own:.1f}", f"{cum:.1f}"] for name, n, own, cum in probe["profile"]]
        title = "cProfile of one candidate run over all tasks"
        print_table(rows, ("function", "calls", "own ms", "cumulative ms"), title)


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
    add("--database", default=DATABASE, help=f"bench database (default {DATABASE})")
    add("--profile", action="store_true", help="break the JSON path down even if the goal is met")
    args = parser.parse_args(argv)
    if min(args.tasks, args.projects, args.users, args.duration, args.rounds, args.runs) < 1:
        parser.error("counts, --duration, --rounds and --runs must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(main())
