"""WebSocket fan-out latency: from a write's return to its event at the last of N clients.

Candidate: the realtime service and the tasks function, one uvicorn process each, on the bench
database taskwire_bench_ws (created, migrated, kept) and a Redis prefix of this run. N clients
subscribe to a project made for this run (bench._seed.ws_project); a write is POST /tasks/ in it,
its event the task.created with the new task's id. Reference: the same fan-out through Redis
pub/sub and a bare `websockets` server (bench/_ws_reference_server.py); a write is a PUBLISH of a
copy of a real task.created event. Both with the same N and client code (bench/_ws_clients.py),
taking turns first; warm-up writes are waited for at every client, then each measured write
waits for its event at all N clients (or its timeout) before the next.

Latency = arrival at the last client - return of the write, signed (the candidate publishes on
commit, before the response is sent: negative means every client had it first). Lost: deliveries
missing after --timeout; ooo/dup: out-of-order/duplicate deliveries. Per phase, a line gives the
connect time, the servers' memory and the CPU per write of the servers and of this process.
"""

import argparse
import asyncio
import json
import platform
import resource
import socket
import sys
import tempfile
import time
import uuid
from argparse import Namespace
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from bench import _procs, percentile, print_table
from bench._procs import HOST, REDIS_URL, Server, cpu_seconds, rss_mib, wait_idle
from bench._ws_clients import Fleet, Outcome, Write, run_writes

DATABASE = "taskwire_bench_ws"
CANDIDATE = "candidate"
REFERENCE = "reference"
GOAL_CLIENTS = 1000
GOAL_RATIO = 4.0
WARMUP_TIMEOUT_S = 60
LOG_LINES_SHOWN = 5
WRITE_ATTEMPTS = 3
RETRY_PAUSE_S = 0.5
DUE_DATE = "2030-01-01T00:00:00Z"
HEADERS = (
    "N",
    "candidate p50 ms",
    "candidate p99 ms",
    "reference p50 ms",
    "reference p99 ms",
    "p99 ratio",
    "lost (candidate)",
    "lost (reference)",
    "ooo/dup (candidate)",
    "ooo/dup (reference)",
)


@dataclass
class Phase:
    """One system measured at one N."""

    outcome: Outcome
    warmup_lost: int  # deliveries of the warm-up writes missing at their timeout
    connect_s: float  # to connect the N clients
    rss_mib: dict[str, float]  # server -> resident memory once the N clients are connected
    cpu_ms_per_write: dict[str, float]  # process (the servers, then "bench") -> CPU per write
    retried: int  # write attempts retried after a 5xx answer


@dataclass
class Setup:
    """This run's servers and data."""

    servers: dict[str, Server]
    project: int
    tokens: list[str]  # of users enough for N sockets within the per-user limit
    template: dict[str, Any]
    channel: str


# The realtime service as deployed (README, local run): events are small JSON, and compressing
# each one per client costs more CPU than it saves bytes.
REALTIME_OPTIONS = ("--ws-per-message-deflate", "false")


def raise_fd_limit(clients: int) -> None:
    """Raise this process's soft limit of open files (inherited by the servers) for N clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * clients + 512
    if soft != resource.RLIM_INFINITY and soft < needed:
        limit = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def start_servers(started: _procs.Servers, env: dict[str, str], channel: str) -> None:
    """The realtime service, the tasks function and the reference, each ready."""
    started.uvicorn("realtime", "realtime.handler:application", env, *REALTIME_OPTIONS)
    started.uvicorn("tasks", "functions.tasks.handler:application", env)
    port = _procs.free_port()
    command = [sys.executable, "-m", "bench._ws_reference_server", str(port), REDIS_URL, channel]
    plain = {"PATH": env["PATH"], "PYTHONPATH": env["PYTHONPATH"]}
    reference = started.start("reference", command, plain, port)

    def subscribed() -> bool:
        with (
            socket.create_connection((HOST, port), timeout=1),
            redis.Redis.from_url(REDIS_URL) as r,
        ):
            return dict(r.pubsub_numsub(channel)).get(channel.encode(), 0) > 0

    _procs.wait_until(reference, subscribed)


class CandidateWrite:
    """POST /tasks/ in the project; the event's key is the new task's id.

    A 5xx answer is retried (after RETRY_PAUSE_S, at most WRITE_ATTEMPTS in all) and counted in
    `retried`: the PostgreSQL of this machine is shared, and another user's test run can take all
    its connections for a moment. The write then counts from its successful attempt's answer."""

    def __init__(self, http: httpx.Client, project: int) -> None:
        self.http = http
        self.project = project
        self.retried = 0

    def __call__(self, number: int) -> int:
        body = {"project": self.project, "title": f"ws_latency {number}", "due_date": DUE_DATE}
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            response = self.http.post("/tasks/", json=body)
            if response.status_code == 201:
                return response.json()["id"]
            if response.status_code < 500 or attempt == WRITE_ATTEMPTS:
                break
            self.retried += 1
            time.sleep(RETRY_PAUSE_S)
        raise RuntimeError(f"POST /tasks/ answered {response.status_code}: {response.text}")


def reference_write(client: redis.Redis, channel: str, template: dict[str, Any]) -> Write:
    """PUBLISH a copy of the candidate's task.created event; its key and seq are the number."""

    def write(number: int) -> int:
        payload = {
            **template,
            "seq": number,
            "id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "data": {**template["data"], "id": number},
        }
        if client.publish(channel, json.dumps(payload)) < 1:
            raise RuntimeError(f"no subscriber to {channel}: the reference server is gone")
        return number

    return write


class Usage:
    """CPU time of some servers and of this process ("bench": clients and writer) over an
    interval, per write."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.before = self._now()

    def _now(self) -> dict[str, float]:
        times = {server.name: cpu_seconds(server.pid) for server in self.servers}
        return {**times, "bench": time.process_time()}

    def per_write_ms(self, writes: int) -> dict[str, float]:
        after = self._now()
        return {name: (after[name] - self.before[name]) * 1000 / writes for name in after}


async def run_phase(
    urls: list[str], size: int, write: Write, servers: list[Server], numbers: range, args: Namespace
) -> Phase:
    """Connect N clients, warm up, measure, disconnect."""
    await asyncio.to_thread(wait_idle, [server.pid for server in servers])
    retried = getattr(write, "retried", 0)
    fleet = Fleet(urls, size)
    try:
        connect_s = await fleet.open()
        rss = {server.name: rss_mib(server.pid) for server in servers}
        warmup = range(numbers.start, numbers.start + args.warmup)
        warm = await run_writes(fleet, write, warmup, max(args.timeout, WARMUP_TIMEOUT_S))
        usage = Usage(servers)
        measured = range(warmup.stop, numbers.stop)
        outcome = await run_writes(fleet, write, measured, args.timeout)
        cpu = usage.per_write_ms(len(measured))
    finally:
        await fleet.close()
    retried = getattr(write, "retried", 0) - retried
    return Phase(outcome, warm.lost, connect_s, rss, cpu, retried)


def print_phase(name: str, size: int, phase: Phase) -> None:
    """One line: what the phase cost the servers and the clients, and anything unusual."""
    memory = ", ".join(f"{server} {mib:.0f} MiB" for server, mib in phase.rss_mib.items())
    work = ", ".join(f"{process} {ms:.1f}" for process, ms in phase.cpu_ms_per_write.items())
    notes = [
        f"connected in {phase.connect_s:.2f} s",
        f"RSS {memory}",
        f"CPU ms per write: {work}",
        f"the write itself p50 {percentile(phase.outcome.write_ms, 0.5):.1f} ms",
    ]
    if phase.warmup_lost:
        notes.append(f"{phase.warmup_lost} warm-up deliveries missing")
    if phase.outcome.closed_early:
        notes.append(f"{phase.outcome.closed_early} connections closed by the server")
    if phase.retried:
        notes.append(f"{phase.retried} write attempts answered 5xx and were retried")
    print(f"N={size} {name}: " + "; ".join(notes))


async def run_all(setup: Setup, args: Namespace) -> dict[tuple[int, str], Phase]:
    """Every N, candidate and reference taking turns to go first."""
    servers = setup.servers
    realtime, tasks, reference = servers["realtime"], servers["tasks"], servers["reference"]
    candidate = f"ws://{HOST}:{realtime.port}/ws/notifications/?projects={setup.project}"
    urls = {
        CANDIDATE: [f"{candidate}&token={token}" for token in setup.tokens],
        REFERENCE: [f"ws://{HOST}:{reference.port}/"],
    }
    watched = {CANDIDATE: [realtime, tasks], REFERENCE: [reference]}
    headers = {"Authorization": f"Bearer {setup.tokens[0]}"}
    per_phase = args.warmup + args.writes
    phases: dict[tuple[int, str], Phase] = {}
    with (
        httpx.Client(base_url=f"http://{HOST}:{tasks.port}", headers=headers, timeout=30) as http,
        redis.Redis.from_url(REDIS_URL, socket_timeout=30) as client,
    ):
        writes = {
            CANDIDATE: CandidateWrite(http, setup.project),
            REFERENCE: reference_write(client, setup.channel, setup.template),
        }
        number = 1
        for index, size in enumerate(args.clients):
            order = (CANDIDATE, REFERENCE) if index % 2 == 0 else (REFERENCE, CANDIDATE)
            for name in order:
                numbers = range(number, number + per_phase)
                phase = await run_phase(
                    urls[name], size, writes[name], watched[name], numbers, args
                )
                print_phase(name, size, phase)
                phases[size, name] = phase
                number = numbers.stop
    return phases


def stat(outcome: Outcome, share: float) -> float | None:
    return percentile(outcome.latencies_ms, share) if outcome.latencies_ms else None


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def p99_ratio(candidate: Outcome, reference: Outcome) -> float | None:
    ours, theirs = stat(candidate, 0.99), stat(reference, 0.99)
    if ours is None or theirs is None or theirs <= 0:
        return None
    return ours / theirs


def table_rows(clients: list[int], phases: dict[tuple[int, str], Phase]) -> list[list[str]]:
    rows = []
    for size in clients:
        ours, theirs = phases[size, CANDIDATE].outcome, phases[size, REFERENCE].outcome
        ratio = p99_ratio(ours, theirs)
        rows.append(
            [
                str(size),
                ms(stat(ours, 0.5)),
                ms(stat(ours, 0.99)),
                ms(stat(theirs, 0.5)),
                ms(stat(theirs, 0.99)),
                "n/a" if ratio is None else f"{ratio:.2f}",
                str(ours.lost),
                str(theirs.lost),
                f"{ours.out_of_order}/{ours.duplicates}",
                f"{theirs.out_of_order}/{theirs.duplicates}",
            ]
        )
    return rows


def goal_line(phases: dict[tuple[int, str], Phase]) -> str:
    goal = (
        f"goal: candidate p99 within {GOAL_RATIO:g}x the reference's at N={GOAL_CLIENTS}, "
        "and 0 lost events"
    )
    if (GOAL_CLIENTS, CANDIDATE) not in phases:
        return f"{goal}: not measured (N={GOAL_CLIENTS} not among --clients)"
    lost = sum(phase.outcome.lost for (_, name), phase in phases.items() if name == CANDIDATE)
    ratio = p99_ratio(
        phases[GOAL_CLIENTS, CANDIDATE].outcome, phases[GOAL_CLIENTS, REFERENCE].outcome
    )
    met = ratio is not None and ratio <= GOAL_RATIO and lost == 0
    ratio_text = "n/a" if ratio is None else f"{ratio:.2f}x"
    verdict = "met" if met else "NOT met"
    return f"{goal}: {verdict} (p99 ratio {ratio_text}, candidate lost {lost})"


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


def parse_args(argv: list[str]) -> Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench ws_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--clients",
        type=parse_clients,
        default=[1, 100, 1000],
        help="numbers of clients N (default 1,100,1000)",
    )
    parser.add_argument("--writes", type=int, default=100, help="measured writes per N (100)")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted writes first (3)")
    parser.add_argument(
        "--timeout", type=float, default=10, help="seconds before a delivery counts lost (10)"
    )
    parser.add_argument("--log-dir", type=Path, help="keep the server logs here (default: drop)")
    parser.add_argument("--database", default=DATABASE, help=f"bench database ({DATABASE})")
    args = parser.parse_args(argv)
    if args.writes < 1 or args.warmup < 1 or args.timeout <= 0:
        parser.error("--writes and --warmup must be at least 1, --timeout positive")
    return args


def run(args: Namespace) -> dict:
    """Every phase; {"phases": {(N, system): Phase}, "problems": {server: log lines}}."""
    raise_fd_limit(max(args.clients))
    env = _procs.prepared_env("ws", args.database)
    data = _procs.call("bench._seed:ws_project", env)
    channel = f"{env['REDIS_PREFIX']}.reference"
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-ws-") as logs,
            _procs.servers(args.log_dir or Path(logs)) as started,
        ):
            start_servers(started, env, channel)
            setup = Setup(started.started, data["project"], data["tokens"], data["event"], channel)
            phases = run_async(run_all(setup, args))
            started.stop()
            problems = started.problems()
    finally:
        _procs.drop_prefix(env["REDIS_PREFIX"])
    return {"phases": phases, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"ws_latency: {args.writes} measured writes per N after {args.warmup} warm-up; "
        f"Python {platform.python_version()}; {_procs.machine()}; latency = arrival at the last "
        "client - return of the write, signed; p99 ratio = candidate p99 / reference p99"
    )
    result = run(args)
    print_table(table_rows(args.clients, result["phases"]), HEADERS)
    print(goal_line(result["phases"]))
    for name, lines in result["problems"].items():
        print(f"{name} log: {len(lines)} warning/error lines", *lines[:5], sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
