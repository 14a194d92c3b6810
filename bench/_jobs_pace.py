"""bench.jobs's reminders at SES's pace: real Celery workers on RabbitMQ, an SES stub at R/s.

One stub (bench._ses_stub, its own process) enforcing rate R and latency L; for each worker
count, that many `celery worker --pool threads --concurrency C` processes on a queue of the
run's own, the seeded database's due reminders reset, one `send_due_reminders` sent (its `now`
the seed's), and the wall time until every reminder is settled, beside the limit due / R. Each
run is checked in the stub: every due task's email accepted, how many more than once, how many
answers were `Throttling`; and in the database: every reminder `sent`. The kill run SIGKILLs one
worker once KILL_AT of the emails are out and lets the others finish. Beside the workers' CPU
per email, their PostgreSQL sessions' and the stub's: on this machine they share its cores.
"""

import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx
import psycopg
from celery import Celery

from bench import _procs

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
KILL_AT = 0.3
SETTLE_TIMEOUT_S = 900


@dataclass
class Pace:
    rate: float
    latency_ms: float
    concurrency: int
    due: int
    now: str  # ISO, the seed's


def _stub(servers: _procs.Servers, pace: Pace, env: dict[str, str]) -> _procs.Server:
    port = _procs.free_port()
    command = [sys.executable, "-m", "bench._ses_stub", "--port", str(port)]
    command += ["--rate", str(pace.rate), "--latency-ms", str(pace.latency_ms)]
    server = servers.start("ses-stub", command, env, port)
    _procs.wait_until(server, lambda: httpx.get(f"{server.url}/healthz", timeout=1).is_success)
    return server


def _workers(
    servers: _procs.Servers, count: int, env: dict[str, str], pace: Pace, tag: str
) -> list[_procs.Server]:
    started = []
    for index in range(count):
        name = f"worker-{tag}-{index}"
        command = [sys.executable, "-m", "celery", "-A", "scheduled.celery", "worker"]
        command += ["--pool", "threads", "--concurrency", str(pace.concurrency)]
        command += ["--queues", env["CELERY_QUEUE"], "--loglevel", "INFO", "--hostname"]
        command += [f"{name}-{env['CELERY_QUEUE']}@%h", "--without-gossip", "--without-mingle"]
        started.append(servers.start(name, command, env, 0))
    for worker in started:
        _procs.wait_until(worker, lambda w=worker: " ready." in w.log_path.read_text())
    return started


def _connect(database: str) -> psycopg.Connection:
    return psycopg.connect(f"postgresql://postgres@{_procs.HOST}:5432/{database}")


def _progress(db: psycopg.Connection) -> tuple[int, int]:
    """(reminders, of which still held by a run or chunk: not settled). A reminder released
    for a later run ("retry", "deferred") is settled for this one."""
    row = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'pending' AND claimed_at IS NOT NULL)"
        " FROM common_reminder"
    ).fetchone()
    return (row[0], row[1]) if row else (0, 0)


class _Backends:
    """The CPU of the bench database's PostgreSQL backends (the workers' sessions) during a run:
    those open at its start from then, those opened during it whole (their start is the run's),
    each as last seen (a session closed mid-run keeps what it used). Not this poller's own."""

    def __init__(self, db: psycopg.Connection, database: str) -> None:
        self.db, self.database = db, database
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.look(first=True)

    def look(self, first: bool = False) -> None:
        rows = self.db.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'",  # not autovacuum's, which comes and goes
            [self.database],
        ).fetchall()
        for (pid,) in rows:
            try:
                cpu = _procs.cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
                continue
            self.start.setdefault(pid, cpu if first else 0.0)
            self.last[pid] = cpu

    def seconds(self) -> float:
        return sum(self.last[pid] - self.start[pid] for pid in self.last)


def _outcomes(database: str) -> dict:
    with _connect(database) as db:
        statuses = dict(
            db.execute("SELECT status, count(*) FROM common_reminder GROUP BY status").fetchall()
        )
        throttled = db.execute(
            "SELECT count(*) FROM common_reminder WHERE error ILIKE '%%throttl%%'"
        ).fetchone()
        uncertain = db.execute(
            "SELECT task_id FROM common_reminder WHERE uncertain_sends > 0"
        ).fetchall()
    return {
        "statuses": statuses,
        "throttled_outcomes": throttled[0] if throttled else 0,
        "uncertain_tasks": sorted(row[0] for row in uncertain),
    }


def one_run(
    session: _procs.Session, stub: _procs.Server, pace: Pace, workers: int, kill: bool, reset
) -> dict:
    """Reset, start the workers, send the run, wait until settled; the run's numbers."""
    reset()
    httpx.post(f"{stub.url}/reset", timeout=5)
    queue = f"bench-jobs-{uuid.uuid4().hex[:8]}"
    env = {
        **session.env,
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_QUEUE": queue,
        "SES_ENDPOINT_URL": stub.url,
        "SES_MAX_SEND_RATE": "0",  # each worker reads the stub's MaxSendRate at its start
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "LOG_LEVEL": "INFO",
    }
    tag = f"{workers}{'k' if kill else ''}"
    started = _workers(session.servers, workers, env, pace, tag)
    # A worker's start (imports, Django, Celery: about 1.1 s of CPU) is not the emails' cost.
    ready_cpu = {worker.pid: _procs.cpu_seconds(worker.pid) for worker in started}
    app = Celery(broker=BROKER_URL)
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    poller = _connect(database)
    poller.autocommit = True
    backends = _Backends(poller, database)
    stub_cpu = _procs.cpu_seconds(stub.pid)
    killed_at = None
    try:
        begun = time.monotonic()
        now = datetime.fromisoformat(pace.now)  # kombu's JSON carries a datetime as one
        app.send_task("scheduled.run_job", args=["send_due_reminders"], kwargs={"now": now},
                      queue=queue)  # fmt: skip
        deadline = begun + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            if kill and killed_at is None:
                accepted = httpx.get(f"{stub.url}/stats", timeout=5).json()["accepted"]
                if accepted >= pace.due * KILL_AT:
                    os.kill(started[0].pid, signal.SIGKILL)
                    killed_at = accepted
            total, pending = _progress(poller)
            backends.look()
            if total >= pace.due and pending == 0:
                break
            time.sleep(0.25)
        wall = time.monotonic() - begun
        alive = [worker for worker in started if worker.process.poll() is None]
        cpu = sum(_procs.cpu_seconds(w.pid) - ready_cpu[w.pid] for w in alive)
        backends.look()
        stub_cpu = _procs.cpu_seconds(stub.pid) - stub_cpu
    finally:
        poller.close()
        for worker in started:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in started:
            worker.process.wait(timeout=30)
        with app.connection_for_write() as broker:
            broker.default_channel.queue_delete(queue)
    stats = httpx.get(f"{stub.url}/stats", timeout=5).json()
    counts = stats["by_key"]
    outcomes = _outcomes(database)
    return {
        "workers": workers,
        "killed_after": killed_at,
        "wall_s": wall,
        "sustained_per_s": stats["accepted"] / (stats["last"] - stats["first"])
        if stats["accepted"] > 1
        else 0.0,
        "accepted": stats["accepted"],
        # the surviving workers' CPU (user + system) from ready to settled, per email they
        # sent: what caps the rate on a machine with few cores
        "worker_cpu_ms_per_email": 1000 * cpu / max(1, stats["accepted"] - (killed_at or 0)),
        # beside it, on the same cores: the workers' PostgreSQL sessions and the SES stub (which
        # SES's own machines would be), per email accepted
        "postgres_cpu_ms_per_email": 1000 * backends.seconds() / max(1, stats["accepted"]),
        "stub_cpu_ms_per_email": 1000 * stub_cpu / max(1, stats["accepted"]),
        "throttled_answers": stats["throttled"],
        "tasks_emailed": len(counts),
        "tasks_twice": sorted(int(k.split(":")[1]) for k, n in counts.items() if n == 2),
        "tasks_more": sum(1 for n in counts.values() if n > 2),
        **outcomes,
    }


def run(session: _procs.Session, pace: Pace, worker_counts: list[int], kill_workers: int, reset):
    """Every worker count, then the kill run: {"runs": [...], "limit_s"}."""
    stub = _stub(session.servers, pace, session.env)
    runs = []
    for workers, kill in [(n, False) for n in worker_counts] + [(kill_workers, True)]:
        if workers:
            runs.append(one_run(session, stub, pace, workers, kill, reset))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)  # kept if a later run fails
    return {"runs": runs, "limit_s": pace.due / pace.rate}
