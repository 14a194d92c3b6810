"""End to end: `make run` started as a newcomer would, in a subprocess, then used over HTTP.

Embedded: nothing but the checkout and its virtualenv, no DATABASE_URL, REDIS_URL, broker or SES
endpoint in the environment. Services: the same command with those four set, to a database of
its own on this machine's PostgreSQL, Redis, RabbitMQ and a moto server. Either way a state
directory of its own (VAR_DIR) makes it a first run. The run must come up, print how to use it,
and serve CRUD, websocket events, the cache, jobs (their fan-out run by the worker) and the
outbox from its one port; Ctrl+C stops it.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.sync.client import connect

from local.tests.ses_server import running_moto_server
from scheduled.tests.webhook_receiver import standard_webhooks_verify, start_receiver

ROOT = Path(__file__).resolve().parents[2]
# What a newcomer's shell has; the test suite's own settings must not leak in.
KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Run:
    """`make run` in its own process group, its output collected as it comes."""

    def __init__(self, tmp_path: Path, services: dict[str, str]) -> None:
        self.port = _free_port()
        env = {name: os.environ[name] for name in KEPT if name in os.environ}
        env.update(PORT=str(self.port), VAR_DIR=str(tmp_path / "var"), **services)
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.collector = threading.Thread(target=self._collect, daemon=True)
        self.collector.start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, seconds: float = 120) -> re.Match:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            if match := re.search(pattern, self.output):
                return match
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} in the output of make run:\n{self.output}")

    def interrupt(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # Ctrl+C in the terminal
        try:
            status = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise
        self.collector.join(10)  # the rest of the output
        return status


@pytest.fixture
def services(request):
    """The environment of a services-mode run: a fresh database, Redis, RabbitMQ, moto."""
    if request.param == "embedded":
        yield {}
        return
    from django.conf import settings

    database = settings.DATABASES["default"]
    name = f"taskwire_make_run_{os.getpid()}"
    admin = "postgres://{USER}@{HOST}:{PORT}/postgres".format(**database)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    queue = f"make-run-{os.getpid()}"  # its worker takes no other run's jobs
    with running_moto_server() as ses_url:
        yield {
            "DATABASE_URL": admin.rsplit("/", 1)[0] + f"/{name}",
            "REDIS_URL": settings.REDIS_URL,
            "REDIS_PREFIX": f"{settings.CACHES['default']['KEY_PREFIX']}-make-run",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_QUEUE": queue,
            "SES_ENDPOINT_URL": ses_url,
        }
    from scheduled.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.queue_delete(queue)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def run(tmp_path, services):
    run = Run(tmp_path, services)
    yield run
    print(run.output)  # pytest shows it when the test failed
    with contextlib.suppress(ProcessLookupError):  # make, and whatever it left running
        os.killpg(run.process.pid, signal.SIGKILL)


@pytest.mark.parametrize("services", ["embedded", "services"], indirect=True)
def test_make_run_serves_the_whole_system_on_one_port(run, services):
    password = run.wait_for(r"demo user: demo / (\S+)").group(1)
    base = f"http://127.0.0.1:{run.port}"
    for shown in (f"{base}/docs/", f"ws://127.0.0.1:{run.port}/ws/notifications/"):
        assert shown in run.output
    run.wait_for(r"Uvicorn running on")
    # The worker (a thread, or a child process on RabbitMQ) and Beat are up.
    run.wait_for("Connected to amqp://" if services else "Connected to memory://")
    run.wait_for("beat: Starting...")

    with httpx.Client(base_url=base, timeout=30) as client:
        token = client.post("/auth/token/", json={"username": "demo", "password": password})
        assert token.status_code == 200, token.text
        access = token.json()["access"]
        auth = {"Authorization": f"Bearer {access}"}
        assert client.get("/docs/").status_code == 200

        with connect(f"ws://127.0.0.1:{run.port}/ws/notifications/?token={access}") as ws:
            project = client.post("/projects/", json={"name": "Launch"}, headers=auth).json()
            # A webhook on this machine (allowed in local mode), delivered by the run's worker.
            receiver = start_receiver()
            hook = client.post(
                f"/projects/{project['id']}/webhooks/",
                json={"url": receiver.url(), "events": ["task.created", "comment.created"]},
                headers=auth,
            )
            assert hook.status_code == 201, hook.text
            due = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
            task = client.post(
                "/tasks/",
                json={"project": project["id"], "title": "Write the notes", "due_date": due},
                headers=auth,
            ).json()
            comment = client.post(
                f"/tasks/{task['id']}/comments/", json={"content": "On it."}, headers=auth
            )
            assert comment.status_code == 201, comment.text
            events = [json.loads(ws.recv(timeout=10)) for _ in range(3)]
            assert [e["type"] for e in events] == [
                "project.created",
                "task.created",
                "comment.created",
            ]
            assert [e["seq"] for e in events] == [1, 2, 3]
            delivered = receiver.wait_for(2)
            receiver.close()
            assert sorted(r.json["type"] for r in delivered) == ["comment.created", "task.created"]
            for request in delivered:
                standard_webhooks_verify(hook.json()["secret"], request.headers, request.body)

            caches = [client.get("/tasks/", headers=auth).headers["X-Cache"] for _ in range(2)]
            assert caches == ["miss", "hit"]
            renamed = client.patch(
                f"/tasks/{task['id']}/", json={"title": "Write the release notes"}, headers=auth
            )
            assert renamed.status_code == 200
            listed = client.get("/tasks/", headers=auth)
            assert listed.headers["X-Cache"] == "miss"  # a write invalidates
            assert listed.json()["results"][0]["title"] == "Write the release notes"
            assert json.loads(ws.recv(timeout=10))["type"] == "task.updated"

            reminders = client.post("/local/jobs/send_due_reminders/")
            assert reminders.json() == {
                "job": "send_due_reminders",
                "result": {"claimed": 1, "sent": 1},
            }
            reminded = json.loads(ws.recv(timeout=10))  # the job writes through the service
            assert (reminded["type"], reminded["actor"]) == ("task.updated", None)
            assert reminded["data"]["reminder_sent_at"] is not None
            summaries = client.post("/local/jobs/generate_project_summaries/")
            assert summaries.status_code == 200, summaries.text
            summary = json.loads(ws.recv(timeout=10))
            assert (summary["type"], summary["project"]) == ("summary.generated", project["id"])

        # The summary emails go out as jobs of their own, which the in-process worker runs.
        assert summaries.json()["result"]["stored"] == 1
        outbox = _wait_for_emails(client, 2)
        assert {email["to"] for email in outbox} == {"demo@taskwire.local"}
        subjects = [email["subject"] for email in outbox]
        assert any("Write the release notes" in subject for subject in subjects), subjects
        assert any("Launch" in subject for subject in subjects), subjects

    run.interrupt()  # make itself reports the interrupt with its own exit status
    assert "Finished server process" in run.output


def _wait_for_emails(client: httpx.Client, count: int, seconds: float = 30) -> list[dict]:
    deadline = time.monotonic() + seconds
    while len(outbox := client.get("/local/outbox/").json()) < count:
        assert time.monotonic() < deadline, outbox
        time.sleep(0.2)
    return outbox


@pytest.mark.parametrize("missing", ["REDIS_URL", "SES_ENDPOINT_URL"])
def test_a_broker_without_the_services_the_workers_share_is_refused(monkeypatch, missing):
    # The worker processes would keep their own events, cache versions or mock mail otherwise.
    from local.run import _mode

    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SES_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert _mode() == "services"
    monkeypatch.delenv(missing)
    with pytest.raises(SystemExit, match=f"set {missing} too"):
        _mode()
    monkeypatch.delenv("CELERY_BROKER_URL")
    assert _mode() == "embedded"


def _descendants(pid: int) -> set[int]:
    """The processes below `pid`, read off /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its entry waits to be reaped


@pytest.mark.parametrize("services", ["services"], indirect=True)
def test_sigterm_to_make_run_stops_its_worker_and_beat_too(run, services):
    run.wait_for("Connected to amqp://")
    run.wait_for("beat: Starting...")
    run.wait_for(r"Uvicorn running on")
    below = _descendants(run.process.pid)
    assert len(below) >= 3, below  # the local run, its worker (and the worker's pool), Beat

    os.kill(run.process.pid, signal.SIGTERM)  # to make, as a service manager would; it passes
    run.process.wait(timeout=60)  # SIGTERM on to the local run

    deadline = time.monotonic() + 30
    while (left := {pid for pid in below if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running after SIGTERM: {left}\n{run.output}"


def test_manage_py_in_a_checkout_needs_no_variable_and_uses_the_local_runs_database(tmp_path):
    env = {name: os.environ[name] for name in KEPT if name in os.environ}
    env["VAR_DIR"] = str(tmp_path / "var")  # where `make run` keeps its database, as README says
    python = str(ROOT / ".venv" / "bin" / "python")
    superuser = {
        "DJANGO_SUPERUSER_USERNAME": "newcomer",
        "DJANGO_SUPERUSER_PASSWORD": "a-pass-phrase-1",
        "DJANGO_SUPERUSER_EMAIL": "newcomer@example.com",
    }
    for command, extra in ((["migrate"], {}), (["createsuperuser", "--noinput"], superuser)):
        result = subprocess.run(
            [python, "manage.py", *command],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr

    import sqlite3

    with contextlib.closing(sqlite3.connect(tmp_path / "var" / "taskwire.sqlite3")) as database:
        rows = database.execute("SELECT username, is_superuser FROM auth_user").fetchall()
    assert rows == [("newcomer", 1)]
