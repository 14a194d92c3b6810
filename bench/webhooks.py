"""Webhook delivery: events to webhooks on a local receiver, beside a bare httpx client loop.

Database: taskwire_bench_webhooks on 127.0.0.1 (or --database; created if missing, migrated,
emptied of projects, events and deliveries at each run). --webhooks projects (default 10), each
with one webhook asking for every event, at 127.0.0.1 on one uvicorn process
(bench/_webhooks_receiver.py: notes each POST's path, webhook-id and arrival time, answers 204).
Events are written by a Django child with publish_many, one event in each project per
transaction (the outbox rows in the event's transaction, the queueing after commit: the path
of every write); they reach the webhooks through RabbitMQ and --workers processes of the
production worker command (`celery worker --pool threads --concurrency --threads`, production
settings), each message carrying the deliveries of one write.

Reference: --workers processes of bench/_webhooks_reference.py, each posting its share of the
same number of signed POSTs (an envelope-sized body, a webhook-id each, the Standard Webhooks
signature) on --threads kept-alive httpx.AsyncClients, --webhooks at a time on each: the same
concurrency as the workers (a process each, in it one event loop, as the worker's for its
threads' attempts, with --threads messages of a write's deliveries at once).

Throughput: --events events logged while no worker runs, then the workers start; deliveries a
second = deliveries / (last arrival - first arrival), the same measure as the reference's, which
runs before and after it (their mean: a machine whose load changes hits both sides alike).
Latency: --events more events written at GOAL x the reference's rate with the workers
running, by --producers children at once (one alone writes more slowly than that here; they
share the projects, whose locks they take in the same order); the p99 counts only when they
reached 95% of that rate. Commit to receipt = arrival - the event's occurred_at (taken in its
transaction, just before the commit). Lost: events never received; duplicates: (webhook, id)
received twice. Goal: >= 0.7 x the reference's rate, p99 commit to receipt < 1 s at that
rate, none lost or duplicated.
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench import _procs, percentile, print_table, verdict

DATABASE = "taskwire_bench_webhooks"
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
GOAL = 0.7
P99_GOAL_MS = 1000.0
WRITTEN_MIN = 0.95  # of the latency phase's target rate, for its p99 to count
CHILD = "bench._webhooks_child"


def _stats(receiver: str) -> list[tuple[str, str, float]]:
    return [tuple(r) for r in httpx.get(f"{receiver}/stats", timeout=30).json()]


def _wait_for(receiver: str, count: int, timeout: float) -> list[tuple[str, str, float]]:
    """Until `count` POSTs arrived (then 1 s more, for any duplicate) or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and int(httpx.get(f"{receiver}/count").text) < count:
        time.sleep(0.5)
    time.sleep(1)
    return _stats(receiver)


def _rate(records: list[tuple[str, str, float]]) -> float:
    times = [at for _, _, at in records]
    return (len(times) - 1) / (max(times) - min(times)) if len(times) > 1 else 0.0


def _counts(records, expected: set[tuple[str, str]]) -> dict:
    seen = Counter((path, msg_id) for path, msg_id, _ in records)
    return {
        "received": len(records),
        "lost": len(expected - seen.keys()),
        "duplicates": sum(n - 1 for n in seen.values()),
        "unexpected": len(seen.keys() - expected),
    }


def reference(receiver: str, args: argparse.Namespace) -> dict:
    share = [
        args.events // args.workers + (i < args.events % args.workers) for i in range(args.workers)
    ]
    command = [sys.executable, "-m", "bench._webhooks_reference", receiver]
    cpu_before = _children_cpu()
    loops = [
        subprocess.Popen([*command, str(n), str(args.webhooks), str(args.threads)], cwd=_procs.REPO)
        for n in share
    ]
    for loop in loops:
        if loop.wait(timeout=_procs.CHILD_TIMEOUT_S):
            raise RuntimeError("a reference loop failed")
    records = _stats(receiver)
    seen = Counter(msg_id for _, msg_id, _ in records)
    return {
        "rate": _rate(records),
        "received": len(records),
        "duplicates": sum(n - 1 for n in seen.values()),
        "cpu_ms_per_delivery": (_children_cpu() - cpu_before) * 1000 / max(len(records), 1),
    }


def _mean(before: dict, after: dict) -> dict:
    """Two reference runs as one: the mean rate and CPU, all that was received."""
    rates = [before["rate"], after["rate"]]
    cpu = (before["cpu_ms_per_delivery"] + after["cpu_ms_per_delivery"]) / 2
    counts = {key: before[key] + after[key] for key in ("received", "duplicates")}
    return {"rate": sum(rates) / 2, "rates": rates, "cpu_ms_per_delivery": cpu, **counts}


def _produce(env: dict, projects: list[int], args: argparse.Namespace, rate: float) -> dict:
    """args.events events from args.producers children at once, each at its share of `rate`
    (0: as fast as each goes); how many, and the seconds from the first start to the last end."""
    shares = [
        args.events // args.producers + (i < args.events % args.producers)
        for i in range(args.producers)
    ]

    def one(events: int) -> dict:
        share = rate * events / args.events
        return _procs.call(f"{CHILD}:produce", env, projects=projects, events=events, rate=share)

    with ThreadPoolExecutor(args.producers) as pool:
        done = list(pool.map(one, [n for n in shares if n]))
    seconds = max(d["end"] for d in done) - min(d["start"] for d in done)
    return {"events": sum(d["events"] for d in done), "seconds": seconds}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: argparse.Namespace) -> dict:
    """{"reference", "throughput", "latency", "deliveries", "problems"}."""
    queue = f"bench-webhooks-{os.getpid()}"
    with _procs.session("webhooks", args.database) as session:
        env = {
            **session.env,
            "CELERY_BROKER_URL": BROKER,
            "CELERY_QUEUE": queue,
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver is on 127.0.0.1
        }
        receiver = session.servers.uvicorn(
            "receiver", "bench._webhooks_receiver:application", env, "--lifespan", "off"
        ).url
        result: dict = {"reference": reference(receiver, args)}
        httpx.get(f"{receiver}/reset")
        projects = _procs.call(f"{CHILD}:prepare", env, webhooks=args.webhooks, receiver=receiver)
        paths = {pk: f"/hook/{i}" for i, pk in enumerate(projects["projects"])}
        _produce(env, list(paths), args, rate=0)
        command = [sys.executable, "-m", "celery", "-A", "scheduled.celery", "worker"]
        command += ["--pool", "threads", "--concurrency", str(args.threads), "--queues", queue]
        command += ["--without-heartbeat", "--without-gossip", "--without-mingle"]
        command += ["--loglevel", "WARNING"]
        workers = [
            session.servers.start(f"worker{i}", [*command, "-n", f"{queue}-{i}@%h"], env, port=0)
            for i in range(args.workers)
        ]
        try:
            drained = _wait_for(receiver, args.events, args.timeout)
            first = _procs.call(f"{CHILD}:outcome", env)
            expected = {(paths[pk], i) for i, pk in first["projects"].items()}
            result["throughput"] = {"rate": _rate(drained), **_counts(drained, expected)}
            httpx.get(f"{receiver}/reset")  # the reference again, in turn: the machine drifts
            result["reference"] = _mean(result["reference"], reference(receiver, args))

            httpx.get(f"{receiver}/reset")
            target = GOAL * result["reference"]["rate"]
            cpu_before = sum(_procs.cpu_seconds(worker.pid) for worker in workers)
            written = _produce(env, list(paths), args, rate=target)
            paced = _wait_for(receiver, args.events, args.timeout)
            cpu = sum(_procs.cpu_seconds(worker.pid) for worker in workers) - cpu_before
            second = _procs.call(f"{CHILD}:outcome", env)
        finally:
            session.servers.stop()
            _delete_queue(queue)
        fresh = {i: pk for i, pk in second["projects"].items() if i not in first["projects"]}
        expected = {(paths[pk], i) for i, pk in fresh.items()}
        latencies = [
            (at - second["occurred"][msg_id]) * 1000
            for _, msg_id, at in paced
            if msg_id in second["occurred"]
        ]
        result["latency"] = {
            "target_rate": target,
            "written_rate": written["events"] / written["seconds"],
            "p50_ms": percentile(latencies, 0.5) if latencies else float("nan"),
            "p99_ms": percentile(latencies, 0.99) if latencies else float("nan"),
            "cpu_ms_per_delivery": cpu * 1000 / max(len(paced), 1),
            **_counts(paced, expected),
        }
        result["deliveries"] = second["deliveries"]
        result["problems"] = {
            name: [line for line in lines if not _known(line)]
            for name, lines in session.servers.found.items()
        }
    return result


def _known(line: str) -> bool:
    """Celery's warning about running as root (this machine's user), not a problem of the run."""
    return any(text in line for text in ("superuser privileges", "SecurityWarning", "uid=0"))


def _delete_queue(queue: str) -> None:
    from kombu import Connection

    with Connection(BROKER) as broker:
        broker.default_channel.queue_delete(queue)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench webhooks", description=__doc__)
    add = parser.add_argument
    add("--events", type=int, default=10_000, help="events in each phase (default 10000)")
    add("--webhooks", type=int, default=10, help="projects, one webhook each (default 10)")
    add("--workers", type=int, default=2, help="worker processes, and reference loops (default 2)")
    add(
        "--threads",
        type=int,
        default=4,
        help="threads of each worker (production: 4), clients of each loop",
    )
    add(
        "--producers",
        type=int,
        default=2,
        help="children writing the events at once (default 2)",
    )
    add("--timeout", type=float, default=600, help="seconds to wait for a phase's deliveries")
    add("--database", default=DATABASE, help=f"bench database (default {DATABASE})")
    args = parser.parse_args(argv)
    if min(args.events, args.webhooks, args.workers, args.threads, args.producers) < 1:
        parser.error("counts must be at least 1")
    return args


def _row(
    measure: str, candidate: str, reference="", ratio="", goal="", met: bool | None = None
) -> list[str]:
    return [measure, candidate, reference, ratio, goal, "" if met is None else verdict(met)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = run(args)
    ref, put, lat = result["reference"], result["throughput"], result["latency"]
    print(
        f"webhooks: {args.events} events to {args.webhooks} webhooks (one per project), "
        f"{args.workers} worker processes / reference loops, each {args.threads} threads / "
        f"clients of {args.webhooks} in flight; "
        f"{_procs.machine()}"
    )
    ratio = put["rate"] / ref["rate"]
    cpu, ref_cpu = lat["cpu_ms_per_delivery"], ref["cpu_ms_per_delivery"]
    lost, duplicates = put["lost"] + lat["lost"], put["duplicates"] + lat["duplicates"]
    cpu_ratio = f"{cpu / ref_cpu:.2f}"
    rate_goal = (f">= {GOAL}", ratio >= GOAL)
    p99 = lat["p99_ms"]
    at_target = lat["written_rate"] >= WRITTEN_MIN * lat["target_rate"]
    rows = [
        _row(
            "deliveries/s", f"{put['rate']:.0f}", f"{ref['rate']:.0f}", f"{ratio:.2f}", *rate_goal
        ),
        _row("CPU ms per delivery (workers / loops)", f"{cpu:.2f}", f"{ref_cpu:.2f}", cpu_ratio),
        _row("p50 commit->receipt ms", f"{lat['p50_ms']:.0f}"),
        _row(
            "p99 commit->receipt ms",
            f"{p99:.0f}",
            goal=f"< {P99_GOAL_MS:.0f}" + ("" if at_target else ", written below the target"),
            met=p99 < P99_GOAL_MS and at_target,
        ),
        _row("lost", str(lost), goal="0", met=lost == 0),
        _row("duplicates", str(duplicates), str(ref["duplicates"]), goal="0", met=duplicates == 0),
    ]
    print_table(
        rows,
        ("measure", "candidate", "reference", "ratio", "goal", "met"),
        title=(
            f"latency phase written at {lat['written_rate']:.0f}/s "
            f"(target {lat['target_rate']:.0f}/s = {GOAL} x the reference's rate)"
        ),
    )
    before, after = ref["rates"]
    print(f"reference before / after the drain: {before:.0f} / {after:.0f} deliveries/s")
    print(f"deliveries by status: {result['deliveries']}")
    for name, lines in result["problems"].items():
        for line in lines[:5]:
            print(f"{name}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
