"""Writes under load: PUT, PATCH and POST of a task, server CPU per request beside plain DRF.

Candidate: the tasks function (`functions.tasks.handler:application`): the write through its
service, with the locks, the event and its push after commit, and the cache invalidation.
Reference: bench/_writes_reference.py, plain DRF generic views with the same serializer,
settings and database, the write being serializer.save() alone. Both are one uvicorn process
with the same options, on the bench database taskwire_bench_writes (created, migrated, seeded
when the counts differ, kept), in the same run, taking turns by round.

Load: wrk, a fixed number of connections for a fixed time per run, each request on the next of
the seeded tasks (PUT, PATCH) or projects (POST) in a scattered order, so that concurrent writes
rarely wait on one another's locks; every answer is checked (200, or 201 for POST). CPU per
request = the server process's user + system time over the run (/proc/PID/stat) / good answers.
With --profile, one child process also runs each write through Django's test client under
cProfile, on both views, and reports the top functions of the candidate's. Times are reported,
never asserted.
"""

import argparse
import sys
from dataclasses import dataclass
from functools import partial

import httpx

from bench import _procs, _wrk, median, print_problems, print_table, taking_turns, verdict
from bench._wrk import LoadResult

DATABASE = "taskwire_bench_writes"
APPS = {
    "candidate": "functions.tasks.handler:application",
    "reference": "bench._writes_reference:application",
}
METHODS = ("PUT", "PATCH", "POST")
GOAL = 1.15  # candidate CPU per request within 1.15 x the reference's
DUE = "2030-01-01T00:00:00Z"
BODIES = {  # Lua string.format patterns over (project, title)
    "PUT": '{"project":%d,"title":"%s","description":"","status":"in_progress","due_date":"'
    + DUE
    + '"}',
    "PATCH": '{"title":"%s"}',
    "POST": '{"project":%d,"title":"%s","due_date":"' + DUE + '"}',
}
HEADERS = ("write", "candidate CPU ms/req", "reference CPU ms/req", "CPU ratio", "goal", "met")
HEADERS += ("candidate req/s", "reference req/s", "req/s ratio", "candidate p99 ms")
HEADERS += ("reference p99 ms", "errors")


@dataclass
class Run:
    load: LoadResult
    cpu_s: float

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / max(self.load.good, 1)


@dataclass
class Write:
    """One method's runs on each server; medians over them."""

    method: str
    runs: dict[str, list[Run]]

    def cpu_ms(self, server: str) -> float:
        return median(run.cpu_ms for run in self.runs[server])

    def rps(self, server: str) -> float:
        return median(run.load.rps for run in self.runs[server])

    def p99_ms(self, server: str) -> float:
        return median(run.load.p99_ms for run in self.runs[server])

    def errors(self) -> int:
        return sum(run.load.errors for runs in self.runs.values() for run in runs)


def request_lua(method: str, pairs: list[list[int]]) -> str:
    """wrk's request(): the next (task, project) of a scattered walk over `pairs`."""
    table = ",".join(f"{{{task},{project}}}" for task, project in pairs)
    path = '"/tasks/"' if method == "POST" else '"/tasks/" .. p[1] .. "/"'
    values = "title" if method == "PATCH" else "p[2], title"
    body = BODIES[method]
    return f"""
local targets = {{{table}}}
function request()
  n = n + 1
  local p = targets[((id - 1) * 7919 + n * 104729) % #targets + 1]
  local title = "bench " .. tag .. "-" .. id .. "-" .. n
  wrk.headers["Content-Type"] = "application/json"
  return wrk.format("{method}", {path}, nil, string.format('{body}', {values}))
end
"""


def same_answer(servers: dict[str, _procs.Server], token: str, task: int, project: int) -> bool:
    """One PUT of the same body to each: the same JSON but for updated_at."""
    body = {"project": project, "title": "same", "description": "", "status": "pending"}
    answers = []
    for server in servers.values():
        url = f"{server.url}/tasks/{task}/"
        headers = {"Authorization": f"Bearer {token}"}
        answer = httpx.put(url, json={**body, "due_date": DUE}, headers=headers, timeout=30)
        answer.raise_for_status()
        answers.append({k: v for k, v in answer.json().items() if k != "updated_at"})
    return all(answer == answers[0] for answer in answers)


def load_once(server: _procs.Server, method: str, lua: str, token: str, seconds: int, args) -> Run:
    _procs.wait_idle([server.pid])
    before = _procs.cpu_seconds(server.pid)
    load = _wrk.run_wrk(
        f"{server.url}/tasks/",
        token,
        seconds=seconds,
        connections=args.connections,
        status=201 if method == "POST" else 200,
        request_lua=lua,
    )
    return Run(load, _procs.cpu_seconds(server.pid) - before)


def measure(servers: dict[str, _procs.Server], token: str, pairs, args) -> list[Write]:
    """Per method: a warm-up run of each server, then `rounds` of each, taking turns first."""
    writes = []
    for method in args.methods:
        lua = request_lua(method, pairs)
        once = partial(load_once, method=method, lua=lua, token=token, args=args)
        for server in servers.values() if args.warmup else []:
            once(server, seconds=args.warmup)
        measures = {name: partial(once, servers[name], seconds=args.duration) for name in APPS}
        writes.append(Write(method, taking_turns(measures, args.rounds)))
    return writes


def run(args: argparse.Namespace) -> dict:
    """Seed, serve both, measure; {"writes", "same_answer", "problems", "profile"}."""
    with _procs.session("writes", args.database) as session:
        counts = {"tasks": args.tasks, "projects": args.projects, "users": 5}
        seed = _procs.call("bench._seed:tasks", session.env, **counts, pairs=True)
        token, pairs = seed["token"], seed["pairs"]
        start = partial(session.servers.uvicorn, env=session.env)
        servers = {name: start(name, app) for name, app in APPS.items()}
        same = same_answer(servers, token, *pairs[0])
        writes = measure(servers, token, pairs, args)
        session.servers.stop()
        profile = args.profile and _procs.call(
            "bench._writes_profile:profile", session.env, token=token, pairs=pairs[:200],
            requests=args.profile, methods=args.methods,
        )  # fmt: skip
    problems = session.servers.found
    return {"writes": writes, "same_answer": same, "problems": problems, "profile": profile}


def rows(writes: list[Write]) -> list[list[str]]:
    table = []
    for w in writes:
        cpu = w.cpu_ms("candidate") / w.cpu_ms("reference")
        row = [w.method, *(f"{w.cpu_ms(side):.2f}" for side in APPS), f"{cpu:.2f}", f"<= {GOAL}"]
        row += [verdict(cpu <= GOAL), *(f"{w.rps(side):.0f}" for side in APPS)]
        row += [f"{w.rps('candidate') / w.rps('reference'):.2f}"]
        table.append([*row, *(f"{w.p99_ms(side):.1f}" for side in APPS), str(w.errors())])
    return table


def print_profile(profile: dict) -> None:
    per_request = ", ".join(
        f"{method} {ms['candidate']:.2f} vs {ms['reference']:.2f}"
        for method, ms in profile["cpu_ms"].items()
    )
    print(f"\nin-process (test client, profiler off), CPU ms per request: {per_request}")
    headers = ("function", "calls/req", "own ms", "cumulative ms")
    for method, top in profile["top"].items():
        title = f"candidate {method} under cProfile (CPU), per request: top by own time"
        print_table(top["own"], headers, title)
        print_table(top["ours"], headers, "common/ and functions/ by cumulative time")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not _wrk.available():
        print("writes needs wrk on PATH (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    print(f"writes: {args.tasks} tasks in {args.projects} projects; {_wrk.version()}, ", end="")
    print(f"{args.connections} connections, {args.rounds} x {args.duration} s; {_procs.machine()}")
    result = run(args)
    print_table(rows(result["writes"]), HEADERS, "medians over rounds")
    print(f"same answer from both to one PUT: {verdict(result['same_answer'])}")
    print_problems(result["problems"])
    if result["profile"]:
        print_profile(result["profile"])
    print(f"after the runs: {_procs.machine()}")
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench writes", description=__doc__)
    add = parser.add_argument
    add("--tasks", type=int, default=2000, help="tasks written to (default 2000)")
    add("--projects", type=int, default=200, help="projects they belong to (default 200)")
    add("--methods", type=lambda text: text.upper().split(","), default=list(METHODS))
    add("--duration", type=int, default=8, help="seconds per load run (default 8)")
    add("--rounds", type=int, default=2, help="load runs of each server per write (default 2)")
    add("--warmup", type=int, default=2, help="uncounted seconds first, each (default 2)")
    add("--connections", type=int, default=16, help="wrk connections (default 16)")
    add("--profile", type=int, default=0, metavar="N", help="also profile N requests of each")
    add("--database", default=DATABASE, help=f"bench database (default {DATABASE})")
    args = parser.parse_args(argv)
    if set(args.methods) - set(METHODS) or min(args.duration, args.rounds, args.tasks) < 1:
        parser.error(f"--methods among {','.join(METHODS)}; counts at least 1")
    return args


if __name__ == "__main__":
    sys.exit(main())
