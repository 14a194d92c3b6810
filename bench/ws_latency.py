"""WebSocket fan-out latency: from a write's return to its event at the last of N clients.

Candidate: the realtime service (`realtime.handler:application`) and the tasks function
(`functions.tasks.handler:application`), one uvicorn process each with uvicorn's defaults, on the
bench database `taskwire_bench` (created and migrated when needed, kept afterwards with its data)
and a Redis prefix of this run only. The N clients subscribe to
/ws/notifications/?token=...&projects=P, P a project made for this run (bench/_ws_setup.py); a
write is POST /tasks/ in P, and its event is the task.created whose `data.id` is the new task's id.

Reference: the same fan-out through Redis pub/sub and a bare `websockets` server
(bench/_ws_reference_server.py) that subscribes to one channel and broadcasts each message to all
its clients. A write is a PUBLISH, from this process, of a copy of a real task.created event of
the candidate (same fields, same size) with its own `seq` and `data.id`.

Both run in the same invocation, with the same N and the same client code (bench/_ws_clients.py):
N websocket clients in this one process (on uvloop when installed), connected 50 at a time, all
connected before any write (the realtime service joins the project's group before it completes
the handshake). Warm-up writes come first and are waited for at every client: a candidate
connection's first event costs it a database query. Then the measured writes run one after
another, each waiting for its event at all N clients, or for its timeout, before the next. For
each N the two systems take turns going first, and each phase waits for the servers to be idle.

Latency of a write = arrival at the last of the N clients - return of the write (HTTP response
read, or PUBLISH answered). Both are time.perf_counter() stamps: the return's is taken in the
worker thread that does the write, so the busy event loop of the clients does not delay it; an
arrival's when that client's reader gets the message. The latency is reported signed. The
candidate publishes on commit, before Django even sends the response, so at small N the event may
reach every client before the response reaches the writer: a negative latency says that, and by
how much. Clamping at 0 would turn those writes into ties and make the p50s at small N meaningless
to compare. p50 and p99 interpolate linearly between ranks (over 100 writes p99 is near the max).

Lost: deliveries (N per write) not there within --timeout of the write's return; a write with a
lost delivery has no latency. Out-of-order: an event with a `seq` lower than one the client already
has; duplicate: an event a client gets twice. Shown as "ooo/dup": out-of-order/duplicate
deliveries. p99 ratio = candidate p99 / reference p99; it is negative when the candidate's p99
event arrived before its HTTP response, which counts as within any goal.

Per phase, a line gives the connect time of the N clients, each server's resident memory after
they connected, and the CPU time per measured write (Linux /proc) of the servers and of this
process ("bench": the clients and the writes). All the clients share this process, and everything
shares the machine's cores: at large N the clients' own work (reading N frames a write) is in both
latencies, which narrows the ratio.
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import uuid
from argparse import Namespace
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from math import floor
from pathlib import Path
from typing import Any

import httpx
import redis

from bench import print_table
from bench._ws_clients import Fleet, Outcome, Write, run_writes
from bench._ws_servers import (
    HOST,
    REDIS_URL,
    Server,
    cpu_seconds,
    log_problems,
    prepare_data,
    rss_mib,
    server_env,
    start_reference,
    start_uvicorn,
    stop,
    wait_healthy,
    wait_idle,
    wait_subscribed,
)

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
    token: str
    template: dict[str, Any]
    channel: str


# The realtime service as deployed (README, local run): events are small JSON, and compressing
# each one per client costs more CPU than it saves bytes.
REALTIME_OPTIONS = ("--ws-per-message-deflate", "false")


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile of values, interpolated linearly between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def raise_fd_limit(clients: int) -> None:
    """Raise this process's soft limit of open files (inherited by the servers) for N clients."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * clients + 512
    if soft != resource.RLIM_INFINITY and soft < needed:
        limit = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def start_servers(env: dict[str, str], channel: str, log_dir: Path, servers: list[Server]) -> None:
    """Start the three servers (appended to `servers` as they start) and wait until ready."""
    servers.append(
        start_uvicorn("realtime", "realtime.handler:application", env, log_dir, *REALTIME_OPTIONS)
    )
    servers.append(start_uvicorn("tasks", "functions.tasks.handler:application", env, log_dir))
    servers.append(start_reference(channel, log_dir))
    wait_healthy(servers[0])
    wait_healthy(servers[1])
    wait_subscribed(servers[2], channel)


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
    url: str, size: int, write: Write, servers: list[Server], numbers: range, args: Namespace
) -> Phase:
    """Connect N clients, warm up, measure, disconnect."""
    await asyncio.to_thread(wait_idle, [server.pid for server in servers])
    retried = getattr(write, "retried", 0)
    fleet = Fleet(url, size)
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
    query = f"token={setup.token}&projects={setup.project}"
    urls = {
        CANDIDATE: f"ws://{HOST}:{realtime.port}/ws/notifications/?{query}",
        REFERENCE: f"ws://{HOST}:{reference.port}/",
    }
    watched = {CANDIDATE: [realtime, tasks], REFERENCE: [reference]}
    headers = {"Authorization": f"Bearer {setup.token}"}
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


def print_log_problems(servers: list[Server], kept: bool) -> None:
    """How many warnings and errors each server logged, and the first few of them."""
    for server in servers:
        problems = log_problems(server)
        where = f" ({server.log_path})" if kept else ""
        print(f"{server.name} log: {len(problems)} warning/error lines{where}")
        for line in problems[:LOG_LINES_SHOWN]:
            print(f"  {line.replace('|', '/')}")


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
    args = parser.parse_args(argv)
    if args.writes < 1 or args.warmup < 1 or args.timeout <= 0:
        parser.error("--writes and --warmup must be at least 1, --timeout positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    raise_fd_limit(max(args.clients))
    print(
        f"ws_latency: {args.writes} measured writes per N after {args.warmup} warm-up; "
        f"Python {platform.python_version()}; latency = arrival at the last client - return "
        "of the write, signed; p99 ratio = candidate p99 / reference p99"
    )
    prefix = f"taskwire-bench-{os.getpid()}"
    env = server_env(prefix)
    data = prepare_data(env)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="ws_latency-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    try:
        channel = f"{prefix}.reference"
        start_servers(env, channel, log_dir, servers)
        by_name = {server.name: server for server in servers}
        setup = Setup(by_name, data["project"], data["token"], data["template"], channel)
        phases = run_async(run_all(setup, args))
    finally:
        stop(servers)
        print_log_problems(servers, kept=args.log_dir is not None)
        if args.log_dir is None:
            shutil.rmtree(log_dir, ignore_errors=True)
    print_table(table_rows(args.clients, phases), HEADERS)
    print(goal_line(phases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
