"""WebSocket fan-out by membership: CPU per delivery and latency to the last recipient.

Candidate: the realtime service and the tasks function, one uvicorn process each (no
compression), on the bench database taskwire_bench_ws (created, migrated, kept) and a Redis
prefix of this run. N clients over P projects made for this run (bench._seed.ws_projects):
client i's user is a viewer of project i mod P only, and its socket names no project (it hears
its user's). Writes are POST /tasks/ by the projects' owner, who holds no socket, at a fixed rate
(open loop), the projects in turn; an event is the task.created with the new task's id.
Reference: a bare `websockets` server relaying Redis pub/sub, each project's channel to that
project's clients only (bench/_ws_reference_server.py); a write is a PUBLISH of a copy of a real
task.created event. Both with the same clients and rate (bench/_ws_clients.py), taking turns.

Latency = arrival at the last member client - return of the write, signed (the candidate
publishes on commit, before the response is sent). CPU per delivery = the server process's
CPU over the measured writes (until their last delivery) / the deliveries. Lost: deliveries
missing after --timeout; foreign: events of a project the client is not a member of.
Goal at the largest N: CPU per delivery <= 2 x the reference's, p99 <= 1.5 x, 0 lost, 0 foreign.
"""

import argparse
import asyncio
import json
import math
import platform
import resource
import socket
import sys
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import redis

from bench import _procs, median, percentile, print_problems, print_table, verdict
from bench._procs import HOST, REDIS_URL, Server, cpu_seconds, rss_mib, wait_idle
from bench._ws_clients import Fleet, Outcome, Write, run_writes

DATABASE = "taskwire_bench_ws"
CPU_GOAL, P99_GOAL = 2.0, 1.5
SOCKETS_PER_USER = 10  # within the realtime service's 20 per user
WRITE_ATTEMPTS, RETRY_PAUSE_S = 3, 0.5
DUE_DATE = "2030-01-01T00:00:00Z"
# The realtime service as deployed: events are small JSON, and compressing each one per client
# costs more CPU than it saves bytes.
REALTIME_OPTIONS = ("--ws-per-message-deflate", "false")
HEADERS = ("N", "system", "p50 ms", "p99 ms", "CPU us/delivery", "deliveries", "lost",
           "foreign", "ooo/dup", "write p50 ms", "late writes", "connect s", "RSS MiB")  # fmt: skip


@dataclass
class Phase:
    """One system measured at one N."""

    outcome: Outcome
    warmup_lost: int
    connect_s: float
    rss_mib: float  # the server's, once the N clients are connected
    cpu_ms: float  # the server's, over the measured writes
    retried: int  # write attempts retried after a 5xx answer

    @property
    def cpu_us_per_delivery(self) -> float:
        return self.cpu_ms * 1000 / max(1, self.outcome.delivered)

    def p(self, share: float) -> float | None:
        latencies = self.outcome.latencies_ms
        return percentile(latencies, share) if latencies else None


def raise_fd_limit(clients: int) -> None:
    """Raise this process's soft limit of open files (inherited by the servers) for N clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * clients + 512
    if soft != resource.RLIM_INFINITY and soft < needed:
        limit = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def start_servers(started: _procs.Servers, env: dict[str, str], prefix: str) -> None:
    """The realtime service, the tasks function and the reference, each ready."""
    started.uvicorn("realtime", "realtime.handler:application", env, *REALTIME_OPTIONS)
    started.uvicorn("tasks", "functions.tasks.handler:application", env)
    port = _procs.free_port()
    command = [sys.executable, "-m", "bench._ws_reference_server", str(port), REDIS_URL, prefix]
    plain = {"PATH": env["PATH"], "PYTHONPATH": env["PYTHONPATH"]}
    reference = started.start("reference", command, plain, port)

    def subscribed() -> bool:
        with (
            socket.create_connection((HOST, port), timeout=1),
            redis.Redis.from_url(REDIS_URL) as r,
        ):
            return r.publish(f"{prefix}.0", "{}") > 0  # project 0 has no clients

    _procs.wait_until(reference, subscribed)


class CandidateWrite:
    """POST /tasks/ in the project; the event's key is the new task's id.

    A 5xx answer is retried (after RETRY_PAUSE_S, at most WRITE_ATTEMPTS in all) and counted in
    `retried`: the PostgreSQL of this machine is shared, and another user's test run can take all
    its connections for a moment."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.retried = 0

    def __call__(self, number: int, project: int) -> int:
        body = {"project": project, "title": f"ws_latency {number}", "due_date": DUE_DATE}
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            response = self.http.post("/tasks/", json=body)
            if response.status_code == 201:
                return response.json()["id"]
            if response.status_code < 500 or attempt == WRITE_ATTEMPTS:
                break
            self.retried += 1
            time.sleep(RETRY_PAUSE_S)
        raise RuntimeError(f"POST /tasks/ answered {response.status_code}: {response.text}")


def reference_write(client: redis.Redis, prefix: str, template: dict[str, Any]) -> Write:
    """PUBLISH a copy of the candidate's task.created event on the project's channel; its key
    is the number, its seq the project's count."""
    seqs: dict[int, int] = {}

    def write(number: int, project: int) -> int:
        seqs[project] = seqs.get(project, 0) + 1
        payload = {
            **template,
            "project": project,
            "seq": seqs[project],
            "id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "data": {**template["data"], "id": number, "project": project},
        }
        if client.publish(f"{prefix}.{project}", json.dumps(payload)) < 1:
            raise RuntimeError(f"no subscriber to {prefix}.{project}: the reference is gone")
        return number

    return write


async def run_phase(
    fleet: Fleet, write: Write, server: Server, numbers: range, args: argparse.Namespace
) -> Phase:
    """Connect the fleet, warm up, measure, disconnect."""
    await asyncio.to_thread(wait_idle, [server.pid])
    retried = getattr(write, "retried", 0)
    try:
        connect_s = await fleet.open()
        rss = rss_mib(server.pid)
        warmup = range(numbers.start, numbers.start + round(args.warmup * args.rate))
        warm = await run_writes(fleet, write, warmup, args.rate, args.timeout)
        before = cpu_seconds(server.pid)
        outcome = await run_writes(
            fleet, write, range(warmup.stop, numbers.stop), args.rate, args.timeout
        )
        cpu_ms = (cpu_seconds(server.pid) - before) * 1000
    finally:
        await fleet.close()
    return Phase(outcome, warm.lost, connect_s, rss, cpu_ms, getattr(write, "retried", 0) - retried)


def fleets(setup: dict, size: int, servers: dict[str, Server]) -> dict[str, Fleet]:
    """Both systems' fleets of `size` clients over the projects, client i in project i mod P."""
    projects, tokens = setup["projects"], setup["tokens"]
    members = [projects[i % len(projects)] for i in range(size)]
    realtime, reference = servers["realtime"].port, servers["reference"].port
    candidate = [
        f"ws://{HOST}:{realtime}/ws/notifications/?token="
        + tokens[i % len(projects)][(i // len(projects)) // SOCKETS_PER_USER]
        for i in range(size)
    ]
    bare = [f"ws://{HOST}:{reference}/?project={project}" for project in members]
    return {"candidate": Fleet(candidate, members), "reference": Fleet(bare, members)}


async def run_all(setup: dict, servers: dict[str, Server], prefix: str, args) -> dict:
    """Every N and round, candidate and reference taking turns to go first."""
    headers = {"Authorization": f"Bearer {setup['writer']}"}
    tasks_url = f"http://{HOST}:{servers['tasks'].port}"
    per_phase = round((args.warmup + args.seconds) * args.rate)
    phases: dict[tuple[int, str], list[Phase]] = {}
    with (
        httpx.Client(base_url=tasks_url, headers=headers, timeout=30) as http,
        redis.Redis.from_url(REDIS_URL, socket_timeout=30) as client,
    ):
        writes = {
            "candidate": CandidateWrite(http),
            "reference": reference_write(client, prefix, setup["event"]),
        }
        watched = {"candidate": servers["realtime"], "reference": servers["reference"]}
        number, turn = 1, 0
        for size in args.clients:
            for _ in range(args.rounds):
                order = ("candidate", "reference")[:: 1 if turn % 2 == 0 else -1]
                turn += 1
                built = fleets(setup, size, servers)
                for name in order:
                    numbers = range(number, number + per_phase)
                    phase = await run_phase(built[name], writes[name], watched[name], numbers, args)
                    phases.setdefault((size, name), []).append(phase)
                    number = numbers.stop
    return phases


def ratios(phases: dict[tuple[int, str], list[Phase]], size: int) -> dict[str, float | None]:
    """At N=size, medians over the rounds: CPU per delivery and p99, candidate / reference."""

    def median_of(name: str, value) -> float | None:
        values = [v for phase in phases[size, name] if (v := value(phase)) is not None]
        return median(values) if values else None

    result: dict[str, float | None] = {}
    for key, value in (("cpu", lambda p: p.cpu_us_per_delivery), ("p99", lambda p: p.p(0.99))):
        ours, theirs = median_of("candidate", value), median_of("reference", value)
        result[key] = ours / theirs if ours is not None and theirs and theirs > 0 else None
    return result


def met(phases: dict, size: int) -> bool:
    found = ratios(phases, size)
    clean = all(
        p.outcome.lost == p.outcome.foreign == p.warmup_lost == 0
        for (_, name), runs in phases.items()
        for p in runs
        if name == "candidate"
    )
    cpu, p99 = found["cpu"], found["p99"]
    return clean and cpu is not None and cpu <= CPU_GOAL and p99 is not None and p99 <= P99_GOAL


def report(result: dict, args: argparse.Namespace) -> None:
    rows = []
    for (size, name), runs in result["phases"].items():
        for phase in runs:
            o = phase.outcome
            p50, p99 = (phase.p(share) for share in (0.5, 0.99))
            rows.append([size, name, "n/a" if p50 is None else f"{p50:.1f}",
                         "n/a" if p99 is None else f"{p99:.1f}", f"{phase.cpu_us_per_delivery:.1f}",
                         o.delivered, o.lost + phase.warmup_lost, o.foreign,
                         f"{o.out_of_order}/{o.duplicates}",
                         f"{percentile(o.write_ms, 0.5):.1f}", o.late_starts,
                         f"{phase.connect_s:.1f}", f"{phase.rss_mib:.0f}"])  # fmt: skip
    print_table(rows, HEADERS)
    size = max(args.clients)
    found = ratios(result["phases"], size)
    text = {key: "n/a" if value is None else f"{value:.2f}" for key, value in found.items()}
    print(
        f"N={size}, candidate / reference: CPU per delivery {text['cpu']} (goal <= {CPU_GOAL}), "
        f"p99 {text['p99']} (goal <= {P99_GOAL}), and 0 lost, 0 foreign: "
        f"{verdict(met(result['phases'], size))}"
    )
    print_problems(result["problems"])


def run(args: argparse.Namespace) -> dict:
    """Every phase; {"phases": {(N, system): [Phase per round]}, "problems": {server: lines}}."""
    raise_fd_limit(max(args.clients))
    users = math.ceil(max(args.clients) / args.projects / SOCKETS_PER_USER)
    with _procs.session("ws", args.database) as session:
        setup = _procs.call(
            "bench._seed:ws_projects", session.env, projects=args.projects, users_per_project=users
        )
        prefix = f"{session.env['REDIS_PREFIX']}.reference"
        start_servers(session.servers, session.env, prefix)
        phases = run_async(run_all(setup, session.servers.started, prefix, args))
        session.servers.stop()
    return {"phases": phases, "problems": session.servers.found}


def run_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run on uvloop when installed, like the servers."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def parse_clients(text: str) -> list[int]:
    try:
        clients = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not clients or min(clients) < 1 or len(set(clients)) != len(clients):
        raise argparse.ArgumentTypeError(f"need distinct numbers of at least 1: {text!r}")
    return clients


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench ws_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--clients", type=parse_clients, default=[1000], help="numbers of clients N (1000)")
    add("--projects", type=int, default=10, help="projects the clients are spread over (10)")
    add("--rate", type=float, default=20, help="writes a second, over the projects (20)")
    add("--seconds", type=float, default=15, help="measured seconds of writes per phase (15)")
    add("--warmup", type=float, default=2, help="uncounted seconds of writes first (2)")
    add("--rounds", type=int, default=1, help="phases of each system per N (1)")
    add("--timeout", type=float, default=10, help="seconds before a delivery counts lost (10)")
    add("--database", default=DATABASE, help=f"bench database ({DATABASE})")
    args = parser.parse_args(argv)
    if min(args.projects, args.rounds) < 1 or min(args.rate, args.seconds, args.timeout) <= 0:
        parser.error("--projects and --rounds must be at least 1; --rate, --seconds, --timeout > 0")
    if min(args.clients) < args.projects:
        parser.error("every project needs a client: --clients at least --projects")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"ws_latency: N={args.clients} over {args.projects} projects, {args.rate:g} writes/s, "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s measured, {args.rounds} round(s); "
        f"Python {platform.python_version()}; {_procs.machine()}"
    )
    result = run(args)
    report(result, args)
    print(f"at the end: {_procs.machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
