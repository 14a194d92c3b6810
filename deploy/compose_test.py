"""`make compose-test`: docker-compose.yml run as a user runs it, each step timed.

Not part of `make test` (pytest does not collect it: it builds images and starts 15 containers).
In a copy of the checkout (so a `.env` or a compose project of yours is left alone) it writes
`.env` from `.env.example` with generated secrets, runs `up --build`, waits for every service
to be healthy, makes a user with `exec -T auth ... createsuperuser --noinput`, gets a token,
does CRUD through the gateway, takes a websocket event through it, sends a job through RabbitMQ
to the worker, finds its email in the SES mock, restarts the `tasks` container under a stream of
writes (every acknowledged write is kept, and writes succeed again after it), and ends with
`down -v`.
It prints how long each step took.

COMPOSE is the compose command, run in the project's folder: `docker compose` by default, or
`podman-compose`. A command that takes the folder as its first argument, as
shared/containers/compose.sh does, gets it in place of `{dir}`, or first when it is compose.sh.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "REDIS_PASSWORD")
LONG_RUNNING = (
    "postgres",
    "redis",
    "rabbitmq",
    "ses",
    "projects",
    "tasks",
    "comments",
    "auth",
    "admin",
    "realtime",
    "worker",
    "beat",
    "gateway",
)
HEALTHY_WITHIN = 600  # seconds, from `up` to every service healthy
USER = "ops"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # podman-compose colours its log lines


class Failed(Exception):
    """A step did not do what a user would see it do."""


class ToolMissing(Exception):
    """No container engine or compose command to run the test with."""


# --- the compose command ----------------------------------------------------------------------


class Compose:
    def __init__(self, command: str, project_dir: Path) -> None:
        words = shlex.split(command)
        if not words:
            raise ToolMissing("COMPOSE is empty")
        program = words[0]
        if "/" in program:
            program = str(Path(program).expanduser().resolve())
        elif shutil.which(program) is None:
            raise ToolMissing(f"`{program}` is not installed (COMPOSE={command!r})")
        if "/" in program and not os.access(program, os.X_OK):
            raise ToolMissing(f"{program} is not an executable file (COMPOSE={command!r})")
        words[0] = program
        if "{dir}" in words:
            words = [str(project_dir) if word == "{dir}" else word for word in words]
        elif Path(program).name == "compose.sh":
            words.insert(1, str(project_dir))
        self.words = words
        self.project_dir = project_dir

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 900, quiet: bool = False
    ) -> subprocess.CompletedProcess:
        command = [*self.words, *args]
        if not quiet:
            shown = [re.sub(r"(PASSWORD=).*", r"\1***", arg) for arg in args]
            print(f"  $ {shlex.join(['compose', *shown])}", flush=True)
        result = subprocess.run(
            command,
            cwd=self.project_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            raise Failed(f"`compose {shlex.join(args)}` exited {result.returncode}:\n{tail}")
        return result


def preflight(compose: Compose) -> None:
    """Say clearly what is missing before building anything."""
    result = compose("version", check=False, timeout=300, quiet=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-800:]
        raise ToolMissing(f"`{shlex.join(compose.words)} version` failed:\n{output}")
    # Needs the engine itself (the Docker daemon, podman), not only the compose client.
    result = compose("ps", check=False, timeout=120, quiet=True)
    if result.returncode != 0:
        raise ToolMissing(
            f"`compose ps` failed: is the container engine running?\n"
            f"{(result.stdout + result.stderr)[-800:]}"
        )


# --- the project copy and its .env --------------------------------------------------------------


def copy_checkout(target: Path) -> None:
    """The checkout's files (tracked and untracked, not ignored), as a fresh clone would have."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listing.returncode != 0:  # not a git checkout: the folder, minus local state
        shutil.copytree(
            ROOT,
            target,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".git", ".venv", "var", "__pycache__", ".env"),
        )
        return
    for name in listing.stdout.decode().split("\0"):
        source = ROOT / name
        if not name or not source.is_file() or name == ".env":
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_env(project_dir: Path) -> dict[str, str]:
    """.env from .env.example, the secrets generated as the example says, free ports."""
    values = {name: secrets.token_urlsafe(50) for name in SECRETS}
    values |= {"GATEWAY_PORT": str(free_port()), "SES_PORT": str(free_port())}
    # The restart step streams writes from one user faster than the write limit allows: this
    # test is of the topology, the limit has its own tests.
    values["API_WRITE_RATE"] = "1000000"
    lines = []
    for line in (project_dir / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={values[name]}" if name in values and "=" in line else line)
    missing = set(values) - {line.split("=", 1)[0] for line in lines}
    lines += [f"{name}={values[name]}" for name in sorted(missing)]
    env = project_dir / ".env"
    env.write_text("\n".join(lines) + "\n")
    env.chmod(0o600)
    return values


# --- waiting on health --------------------------------------------------------------------------


def service_health(compose: Compose) -> dict[str, str]:
    """service -> its health ('healthy', 'starting', 'unhealthy', or its state), from `ps`."""
    result = compose("ps", "--format", "json", check=False, timeout=120, quiet=True)
    text = result.stdout.strip()
    if not text:
        return {}
    try:
        parsed = json.loads(text)
        rows = parsed if isinstance(parsed, list) else [parsed]
    except json.JSONDecodeError:  # docker compose v2: one object a line
        rows = [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
    health = {}
    for row in rows:
        labels = row.get("Labels") or {}
        if isinstance(labels, str):  # docker: "k=v,k=v"
            labels = dict(item.split("=", 1) for item in labels.split(",") if "=" in item)
        service = row.get("Service") or labels.get("com.docker.compose.service")
        if not service:
            continue
        status = row.get("Health") or ""
        if not status:
            match = re.search(
                r"\((healthy|unhealthy|starting|health: starting)\)", row.get("Status", "")
            )
            status = match.group(1) if match else row.get("State", "") or row.get("Status", "")
        health[service] = "starting" if status == "health: starting" else str(status)
    return health


def wait_healthy(compose: Compose, services: tuple[str, ...], seconds: float) -> dict[str, float]:
    """Wait until each of `services` is healthy; when each got there (seconds from now)."""
    start, deadline = time.monotonic(), time.monotonic() + seconds
    reached: dict[str, float] = {}
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        health = service_health(compose)
        for service in services:
            if service not in reached and health.get(service) == "healthy":
                reached[service] = time.monotonic() - start
        if len(reached) == len(services):
            return reached
        bad = [s for s in services if health.get(s) == "unhealthy"]
        if bad:
            raise Failed(f"unhealthy: {', '.join(bad)} ({health})")
        time.sleep(2)
    waiting = {s: health.get(s, "absent") for s in services if s not in reached}
    raise Failed(f"not healthy within {seconds:.0f}s: {waiting}")


# --- the steps ------------------------------------------------------------------------------------


class Timings:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []
        self.started = time.monotonic()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        print(f"== {name}", flush=True)
        notes: list[str] = []
        start = time.monotonic()
        try:
            yield notes
        finally:
            elapsed = time.monotonic() - start
            self.rows.append((name, elapsed, "; ".join(notes)))
            print(f"   {elapsed:6.1f} s  {'; '.join(notes)}", flush=True)

    def report(self) -> str:
        width = max(len(name) for name, _, _ in self.rows)
        lines = ["", "compose test timings:"]
        lines += [f"  {name:<{width}}  {secs:7.1f} s  {note}" for name, secs, note in self.rows]
        lines.append(f"  {'total':<{width}}  {time.monotonic() - self.started:7.1f} s")
        return "\n".join(lines)


def expect(response: httpx.Response, status: int) -> dict:
    if response.status_code != status:
        raise Failed(
            f"{response.request.method} {response.request.url.path}: {response.status_code}, "
            f"expected {status}: {response.text[:300]}"
        )
    return response.json() if response.content else {}


def run(compose: Compose, timings: Timings) -> None:
    project_dir = compose.project_dir
    with timings.step("prepare: copy, .env with generated secrets") as notes:
        values = write_env(project_dir)
        preflight(compose)
        notes.append(f"project {project_dir.name}, gateway on 127.0.0.1:{values['GATEWAY_PORT']}")
    gateway = f"127.0.0.1:{values['GATEWAY_PORT']}"
    ses = f"http://127.0.0.1:{values['SES_PORT']}"

    started_up = False
    try:
        with timings.step("build (the app image)"):
            compose("build", timeout=1800)
        with timings.step("up -d --build (until every container has started)"):
            started_up = True
            compose("up", "-d", "--build", timeout=HEALTHY_WITHIN + 300)
        with timings.step("healthy (every service's healthcheck)") as notes:
            reached = wait_healthy(compose, LONG_RUNNING, HEALTHY_WITHIN)
            last = max(reached, key=lambda service: reached[service])
            notes.append(f"last: {last}")
            for name in ("rabbitmq", "worker", "beat", "gateway"):
                notes.append(f"{name} +{reached[name]:.0f}s")
        _steps(compose, timings, gateway, ses)
    except BaseException:
        if started_up:
            _diagnose(compose)
        raise
    finally:
        if started_up:
            with timings.step("down -v"):
                compose("down", "-v", timeout=600)


def _steps(compose: Compose, timings: Timings, gateway: str, ses: str) -> None:
    password = secrets.token_urlsafe(24)
    email = f"{USER}@example.com"
    with timings.step("user: exec -T auth createsuperuser --noinput"):
        compose(
            "exec",
            "-T",
            "-e",
            f"DJANGO_SUPERUSER_USERNAME={USER}",
            "-e",
            f"DJANGO_SUPERUSER_PASSWORD={password}",
            "-e",
            f"DJANGO_SUPERUSER_EMAIL={email}",
            "auth",
            "python",
            "manage.py",
            "createsuperuser",
            "--noinput",
            timeout=600,
        )

    client = httpx.Client(base_url=f"http://{gateway}", timeout=15)
    with timings.step("token: POST /auth/token/"):
        token = expect(
            client.post("/auth/token/", json={"username": USER, "password": password}), 200
        )
    access = token["access"]
    client.headers["Authorization"] = f"Bearer {access}"

    with timings.step("CRUD through the gateway") as notes:
        project = expect(client.post("/projects/", json={"name": "Compose test"}), 201)
        due = (datetime.now(UTC) + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
        title = f"Reminder me {secrets.token_hex(4)}"
        task = expect(
            client.post(
                "/tasks/",
                json={"project": project["id"], "title": title, "due_date": due, "assignee": USER},
            ),
            201,
        )
        caches = [
            client.get(f"/tasks/?project={project['id']}").headers.get("x-cache") for _ in range(2)
        ]
        if caches != ["miss", "hit"]:
            raise Failed(f"the task list's X-Cache: {caches}, expected miss then hit")
        expect(client.patch(f"/tasks/{task['id']}/", json={"status": "in_progress"}), 200)
        expect(client.post(f"/tasks/{task['id']}/comments/", json={"content": "On it"}), 201)
        comments = expect(client.get(f"/tasks/{task['id']}/comments/"), 200)
        if [c["content"] for c in comments["results"]] != ["On it"]:
            raise Failed(f"comments: {comments}")
        spare = expect(
            client.post("/tasks/", json={"project": project["id"], "title": "x", "due_date": due}),
            201,
        )
        expect(client.delete(f"/tasks/{spare['id']}/"), 204)
        expect(client.get(f"/tasks/{spare['id']}/"), 404)
        after = client.get(f"/tasks/?project={project['id']}")
        if after.headers.get("x-cache") != "miss" or expect(after, 200)["count"] != 1:
            raise Failed(f"the list after the writes: {after.headers.get('x-cache')} {after.text}")
        notes.append("cache miss, hit, miss after a write")

    with timings.step("websocket: task.created through the gateway") as notes:
        with connect(f"ws://{gateway}/ws/notifications/?token={access}", open_timeout=15) as ws:
            time.sleep(0.5)  # subscribed before the write
            posted = time.monotonic()
            created = expect(
                client.post(
                    "/tasks/", json={"project": project["id"], "title": "Live", "due_date": due}
                ),
                201,
            )
            while True:
                event = json.loads(ws.recv(timeout=15))
                if event.get("type") == "task.created" and event["data"]["id"] == created["id"]:
                    break
        notes.append(f"event {1000 * (time.monotonic() - posted):.0f} ms after the POST")

    with timings.step("job: send_due_reminders through RabbitMQ to the worker") as notes:
        sent = compose(
            "exec",
            "-T",
            "worker",
            "celery",
            "-A",
            "scheduled.celery",
            "call",
            "scheduled.run_job",
            "--args",
            '["send_due_reminders"]',
            timeout=300,
        )
        task_id = sent.stdout.strip().splitlines()[-1].strip()
        if not re.fullmatch(r"[0-9a-f-]{36}", task_id):
            raise Failed(f"celery call printed no task id: {sent.stdout!r}")
        # The task's reminder is recorded once the email went (cheap to ask, through the API);
        # then the worker's log says this job, the one sent above, finished.
        deadline = time.monotonic() + 120
        while not expect(client.get(f"/tasks/{task['id']}/"), 200)["reminder_sent_at"]:
            if time.monotonic() > deadline:
                raise Failed(f"no reminder recorded for task {task['id']} within 120 s")
            time.sleep(0.5)
        pattern = re.compile(rf"Task scheduled\.run_job\[{task_id}\] succeeded in [^:]+: (.*)")
        deadline, match = time.monotonic() + 120, None
        while match is None and time.monotonic() < deadline:
            logs = compose("logs", "worker", check=False, timeout=120, quiet=True)
            match = pattern.search(ANSI.sub("", logs.stdout + logs.stderr))
            if match is None:
                time.sleep(1)
        if match is None:
            raise Failed(f"the worker did not finish job {task_id} within 120 s")
        notes.append(f"worker: {match.group(1).strip()}")

    with timings.step("email: the reminder in the SES mock") as notes:
        deadline, mine = time.monotonic() + 60, []
        while not mine and time.monotonic() < deadline:
            data = httpx.get(f"{ses}/moto-api/data.json", timeout=10).json()
            raw = [m["raw_data"] for m in data.get("ses", {}).get("RawMessage", [])]
            mine = [m for m in raw if title in m]
            if not mine:
                time.sleep(1)
        if len(mine) != 1 or email not in mine[0]:
            raise Failed(f"expected one reminder to {email} naming {title!r}, found {len(mine)}")
        reminded = expect(client.get(f"/tasks/{task['id']}/"), 200)
        if not reminded["reminder_sent_at"]:
            raise Failed(f"the task's reminder_sent_at is unset after the email: {reminded}")
        notes.append(f"1 email to {email}, reminder_sent_at {reminded['reminder_sent_at']}")

    with timings.step("restart tasks under a stream of writes") as notes:
        stream = expect(client.post("/projects/", json={"name": "Restart under writes"}), 201)
        notes.extend(_restart_without_losing_writes(compose, client, stream["id"]))
    client.close()


def _restart_without_losing_writes(compose: Compose, client: httpx.Client, project: int) -> list:
    """POST tasks without pause while `tasks` restarts: each 201 is kept, and writes go through
    again once it is back (the gateway resolves `tasks` per request, so it finds the new one)."""
    outcomes: list[tuple[float, int | str]] = []  # (time, the task's id, or the error)
    due = (datetime.now(UTC) + timedelta(days=30)).isoformat().replace("+00:00", "Z")
    stop = threading.Event()

    def write() -> None:
        with httpx.Client(base_url=client.base_url, headers=client.headers, timeout=10) as own:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    body = {"project": project, "title": f"w{n}", "due_date": due}
                    response = own.post("/tasks/", json=body)
                    result: int | str = (
                        response.json()["id"]
                        if response.status_code == 201
                        else f"HTTP {response.status_code}"
                    )
                except httpx.HTTPError as exc:
                    result = type(exc).__name__
                outcomes.append((time.monotonic(), result))
                time.sleep(0.05)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        while sum(_acked(r) for _, r in outcomes) < 3 and writer.is_alive():
            time.sleep(0.1)
        restart_at = time.monotonic()
        compose("restart", "tasks", timeout=300)
        wait_healthy(compose, ("tasks",), 180)
        healthy_at = time.monotonic()
        # Back: ten writes in a row succeed (and within 30 s of the container being healthy).
        deadline = healthy_at + 30
        while time.monotonic() < deadline:
            tail = [r for t, r in outcomes if t > healthy_at][-10:]
            if len(tail) == 10 and all(_acked(r) for r in tail):
                break
            time.sleep(0.2)
        else:
            tail = [r for t, r in outcomes if t > healthy_at][-10:]
            raise Failed(f"writes did not succeed again after the restart: last {tail}")
    finally:
        stop.set()
        writer.join(timeout=30)

    acked = {r for _, r in outcomes if isinstance(r, int)}
    failed = [r for t, r in outcomes if not _acked(r)]
    listed = set()
    page = f"/tasks/?project={project}&page_size=200"
    while page:
        body = expect(client.get(page), 200)
        listed |= {task["id"] for task in body["results"]}
        page = body["next"]
    if acked - listed:
        raise Failed(f"acknowledged writes lost: {sorted(acked - listed)}")
    phantom = listed - acked  # the project is the stream's own: each task in it is a write
    if phantom:
        raise Failed(f"tasks stored whose POST got an error: {sorted(phantom)}")
    refused_at = [t for t, r in outcomes if not _acked(r)]
    errors = ", ".join(sorted({str(r) for r in failed})) or "none"
    notes = [f"{len(acked)} writes acknowledged, all stored", f"{len(failed)} refused ({errors})"]
    if refused_at:
        back = next(t for t, r in outcomes if t > max(refused_at) and _acked(r))
        notes.append(
            f"refused for {max(refused_at) - min(refused_at):.1f} s; writes back "
            f"{back - restart_at:.1f} s after `restart` began ({back - healthy_at:+.1f} s from "
            "the container's healthy)"
        )
    return notes


def _acked(result: int | str) -> bool:
    return isinstance(result, int)  # a task's id; an error is a string


def _diagnose(compose: Compose) -> None:
    """What a user would look at: the services' states and the last lines of each log."""
    with contextlib.suppress(Exception):
        print("--- compose ps", flush=True)
        print(compose("ps", check=False, quiet=True).stdout)
        print("--- health:", service_health(compose), flush=True)
        for service in LONG_RUNNING:
            logs = compose("logs", service, check=False, timeout=120, quiet=True)
            lines = (logs.stdout + logs.stderr).splitlines()[-25:]
            print(f"--- logs {service} (last {len(lines)} lines)", flush=True)
            print("\n".join(lines), flush=True)


def main() -> int:
    command = os.environ.get("COMPOSE", "docker compose")
    timings = Timings()
    workdir = Path(tempfile.mkdtemp(prefix="taskwire-compose-test-"))
    project_dir = workdir / f"taskwire-ct-{secrets.token_hex(3)}"
    project_dir.mkdir()
    try:
        compose = Compose(command, project_dir)
        copy_checkout(project_dir)
        run(compose, timings)
    except ToolMissing as missing:
        print(
            f"make compose-test needs a container engine with compose: {missing}\n"
            "Install Docker with its compose plugin (or podman with podman-compose), or name "
            "your compose command: COMPOSE='podman-compose' make compose-test.",
            file=sys.stderr,
        )
        return 2
    except Failed as failure:
        print(timings.report())
        print(f"\ncompose test FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(timings.report())
    print("\ncompose test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
