"""`make evidence`: run the system for real and keep what it printed in docs/evidence/.

It runs the test suite, then `make run`'s program in its services mode against this machine's
PostgreSQL, Redis and RabbitMQ and a moto SES server (worker and Beat as child processes), and
drives it as a client would: REST writes, a websocket listening, the task list twice, jobs sent
through the broker to the worker, the outbox. Then Chromium takes the page at `/` through its
tour (local.page_tour) while a second user writes, and a screenshot of each step is kept, named
with the day it was taken. Every file holds the raw output of that run.

Needs the services `make test` needs (README: Set-up); the URLs can be changed with
EVIDENCE_DATABASE_URL (its database is dropped and created), REDIS_URL, CELERY_BROKER_URL.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from moto.server import ThreadedMotoServer
from websockets.sync.client import connect

from local import page_tour

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "evidence"
DATABASE_URL = os.environ.get(
    "EVIDENCE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/taskwire_evidence"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
QUEUE = f"taskwire-evidence-{os.getpid()}"  # the run's worker takes no one else's jobs


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    print("1/2 the test suite (docs/evidence/tests.txt)", flush=True)
    tests = _run_tests()
    print("2/2 a real run (docs/evidence/run.log and the rest)", flush=True)
    facts = _real_run()
    _write_index(started, tests, facts)
    print(f"written: {OUT.relative_to(ROOT)}/", flush=True)


def _run_tests() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    (OUT / "tests.txt").write_text(result.stdout + result.stderr)
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    return f"{summary} (exit status {result.returncode})"


def _fresh_database() -> None:
    name = DATABASE_URL.rsplit("/", 1)[1]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _real_run() -> dict:
    # This process sends jobs to the run's worker: the same broker and queue.
    os.environ.update(
        DEBUG="true",
        DJANGO_SETTINGS_MODULE="common.infra.settings",
        CELERY_BROKER_URL=BROKER_URL,
        CELERY_QUEUE=QUEUE,
    )
    _fresh_database()
    ses = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    ses.start()
    ses_host, ses_port = ses.get_host_and_port()
    port = _free_port()
    env = {
        name: os.environ[name] for name in ("PATH", "HOME", "LANG", "USER") if name in os.environ
    }
    env.update(
        PORT=str(port),
        VAR_DIR=tempfile.mkdtemp(prefix="taskwire-evidence-"),
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX="taskwire-evidence",
        CELERY_BROKER_URL=BROKER_URL,
        CELERY_QUEUE=QUEUE,
        SES_ENDPOINT_URL=f"http://{ses_host}:{ses_port}",
    )
    log_path = OUT / "run.log"
    with log_path.open("w") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "local.run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            password = _wait_for(log_path, r"demo user: demo / (\S+)").group(1)
            _wait_for(log_path, r"Uvicorn running on")
            _wait_for(log_path, r"celery@\S+ ready")
            facts = _drive(f"127.0.0.1:{port}", password, log_path)
            facts["screenshots"] = _page_screenshots(f"http://127.0.0.1:{port}", password, env)
        finally:
            os.killpg(run.pid, signal.SIGINT)
            try:
                run.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
            ses.stop()
            _delete_queue()
    # The demo password and the tokens (uvicorn logs websocket URLs, ?token= and all) are made
    # for this run and die with it, but they are still credentials.
    log = log_path.read_text().replace(password, "<demo password>")
    log_path.write_text(re.sub(r"token=[^\s&\"'<]+", "token=<access token>", log))
    return facts


def _delete_queue() -> None:
    from scheduled.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.queue_delete(QUEUE)


def _wait_for(log_path: Path, pattern: str, seconds: float = 120) -> re.Match:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if match := re.search(pattern, log_path.read_text()):
            return match
        time.sleep(0.2)
    raise SystemExit(f"no {pattern!r} in {log_path} after {seconds} s")


def _drive(host: str, password: str, log_path: Path) -> dict:
    client = httpx.Client(base_url=f"http://{host}", timeout=30)
    access = client.post("/auth/token/", json={"username": "demo", "password": password})
    auth = {"Authorization": f"Bearer {access.raise_for_status().json()['access']}"}
    received: list[str] = []
    listening = threading.Event()

    def listen() -> None:
        url = f"ws://{host}/ws/notifications/?token={auth['Authorization'].split()[1]}"
        with connect(url) as ws:
            listening.set()
            while not received or '"summary.generated"' not in received[-1]:  # the last one
                message = ws.recv(timeout=60)
                received.append(f"{datetime.now(UTC).isoformat()} received {message}")

    listener = threading.Thread(target=listen)
    listener.start()
    listening.wait(10)

    project = client.post("/projects/", json={"name": "Evidence"}, headers=auth).json()
    due = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    task = client.post(
        "/tasks/",
        json={"project": project["id"], "title": "Publish the evidence", "due_date": due},
        headers=auth,
    ).json()
    client.post(f"/tasks/{task['id']}/comments/", json={"content": "Logs attached."}, headers=auth)

    cache_lines = []
    for step in ("first read", "second read", "after a write"):
        if step == "after a write":
            client.patch(f"/tasks/{task['id']}/", json={"status": "in_progress"}, headers=auth)
        started = time.perf_counter()
        response = client.get("/tasks/", headers=auth)
        elapsed = (time.perf_counter() - started) * 1000
        cache_lines.append(
            f"{datetime.now(UTC).isoformat()} GET /tasks/ ({step}) -> {response.status_code}, "
            f"X-Cache: {response.headers.get('X-Cache')}, {elapsed:.1f} ms"
        )
    (OUT / "cache.txt").write_text("\n".join(cache_lines) + "\n")

    # The jobs go through RabbitMQ to the worker process, as Beat sends them.
    from scheduled.celery import app

    for job in ("send_due_reminders", "generate_project_summaries"):
        app.send_task("scheduled.run_job", args=[job], queue=QUEUE)
        _wait_for(log_path, rf"job {job}: ")
    _wait_for(log_path, r"job email_summaries: ")  # the summaries' emails, fanned out
    listener.join(60)
    (OUT / "websocket.txt").write_text("\n".join(received) + "\n")

    outbox = client.get("/local/outbox/").json()
    (OUT / "outbox.json").write_text(json.dumps(outbox, indent=2) + "\n")
    return {"events": len(received), "emails": len(outbox), "cache": cache_lines}


def _page_screenshots(base: str, password: str, env: dict[str, str]) -> list[Path]:
    """The page's tour in Chromium, a screenshot per step; the last run's replaced."""
    if not page_tour.CHROMIUM.exists():
        print(f"  no {page_tour.CHROMIUM}: no screenshots of the page", flush=True)
        return []
    other_password = page_tour.make_user(env, page_tour.OTHER_USER)
    for old in OUT.glob("*-page-*.png"):
        old.unlink()
    day = datetime.now(UTC).date().isoformat()
    result = page_tour.take_tour(
        base, password, other_password, lambda step: OUT / f"{day}-page-{step}.png"
    )
    return result.screenshots


def _write_index(started: datetime, tests: str, facts: dict) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 (git from PATH, as a user's)
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    lines = [
        "# Evidence from a real run",
        "",
        f"Written by `make evidence` on {started:%Y-%m-%d %H:%M} UTC, at commit `{commit}`, on",
        "this machine's PostgreSQL, Redis and RabbitMQ and a moto SES server. Nothing here is",
        "edited by hand; the run's demo password and access tokens are masked in run.log.",
        "",
        f"- [tests.txt](tests.txt): the whole test suite. Result: {tests}.",
        "- [run.log](run.log): `python -m local.run` in services mode: the gateway, the",
        "  Celery worker and Beat as child processes on RabbitMQ, each job received and",
        "  finished (`Task scheduled.run_job[...] received`, `job ...:`, `succeeded`).",
        f"- [websocket.txt](websocket.txt): the {facts['events']} events a websocket client",
        "  received, in order, while the REST calls and the jobs ran.",
        "- [cache.txt](cache.txt): the task list read twice, then after a write:",
        *[f"  - `{line.split(' ', 1)[1]}`" for line in facts["cache"]],
        f"- [outbox.json](outbox.json): the {facts['emails']} emails the SES mock was sent.",
        *_screenshot_lines(facts["screenshots"]),
        "",
    ]
    (OUT / "README.md").write_text("\n".join(lines))


def _screenshot_lines(paths: list[Path]) -> list[str]:
    if not paths:
        return []
    lines = [
        "- The page at `/` in Chromium, signed in as `demo`, while `bob` (another member,",
        "  over REST) writes; each step waited until the page showed the write live:",
    ]
    for path in paths:
        lines.append(f"  - [{path.name}]({path.name})")
    lines.append("")
    lines.extend(f"![{path.stem}]({path.name})" for path in paths)
    return lines


if __name__ == "__main__":
    main()
