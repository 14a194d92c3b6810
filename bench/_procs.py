"""The processes of every bench: databases, Django children, uvicorn servers, Redis, CPU.

Every child runs on 127.0.0.1 with an environment of its own: production settings on a bench
database and a Redis prefix of this run, nothing inherited that could change the settings (such
as the test suite's DJANGO_SETTINGS_MODULE or DATABASE_URL).
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import redis
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REDIS_URL = f"redis://{HOST}:6379/0"
MAINTENANCE_URL = f"postgresql://postgres@{HOST}:5432/postgres"
SECRET_KEY = "bench-only-signing-key-not-a-secret-anywhere-at-all-ever-not-even-here"
CHILD_TIMEOUT_S = 1500
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


def database_url(database: str) -> str:
    return f"postgres://postgres@{HOST}:5432/{database}"


def ensure_database(database: str) -> None:
    """Create the bench database if it is missing (it is kept afterwards, with its data)."""
    with psycopg.connect(MAINTENANCE_URL, autocommit=True, connect_timeout=5) as connection:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        if connection.execute(query, [database]).fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def redis_prefix(bench: str) -> str:
    """This run's own Redis prefix: nothing shared with another run or the test suite."""
    return f"taskwire-{bench}-{os.getpid()}"


def drop_prefix(prefix: str) -> None:
    """Delete every key of this run's prefix."""
    with redis.Redis.from_url(REDIS_URL, socket_timeout=10) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.unlink(*keys[start : start + 1000])


def child_env(database: str, prefix: str, **extra: str) -> dict[str, str]:
    """The whole environment of a child: production settings on the bench database."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "common.infra.settings",
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": database_url(database),
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        "JWT_ACCESS_MINUTES": "240",
        # One user writes far past the API's write limit: counted as ever, never refused.
        "API_WRITE_RATE": "1000000000",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def prepared_env(bench: str, database: str, **extra: str) -> dict[str, str]:
    """A child environment on `database`, created if missing and migrated. A kept database the
    migrations no longer fit (one migrated by another branch's history) is made again: a bench's
    data is only its seed, which it rebuilds."""
    env = child_env(database, redis_prefix(bench), **extra)
    ensure_database(database)
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    try:
        run(migrate, env)
    except RuntimeError as exc:
        print(f"{database}: made again, its migrations did not apply ({exc})", file=sys.stderr)
        drop_database(database)
        ensure_database(database)
        run(migrate, env)
    return env


def drop_database(database: str) -> None:
    with psycopg.connect(MAINTENANCE_URL, autocommit=True, connect_timeout=5) as connection:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        connection.execute(drop.format(sql.Identifier(database)))


def run(
    command: list[str], env: dict[str, str], timeout: float = CHILD_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run a command in the checkout to its end, its output captured. Raises when it fails."""
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return done


def call(target: str, env: dict[str, str], **kwargs: Any) -> Any:
    """`module:function(**kwargs)` in a Django child process (bench._child); its JSON result."""
    out = run([sys.executable, "-m", "bench._child", target, json.dumps(kwargs)], env).stdout
    return json.loads(out.strip().splitlines()[-1])


@dataclass
class Session:
    env: dict[str, str]
    servers: "Servers"


@contextmanager
def session(bench: str, database: str, log_dir: Path | None = None) -> Iterator[Session]:
    """A bench's environment on its migrated database and its servers (logging to log_dir, or
    to a directory dropped afterwards); at the end the servers stop, their log problems stay
    in servers.found, and the run's Redis keys are deleted."""
    env = prepared_env(bench, database)
    try:
        with (
            tempfile.TemporaryDirectory(prefix=f"bench-{bench}-") as logs,
            servers(log_dir or Path(logs)) as started,
        ):
            yield Session(env, started)
    finally:
        drop_prefix(env["REDIS_PREFIX"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def problems(self) -> list[str]:
        """The warning, error and traceback lines of its log."""
        text = self.log_path.read_text(errors="replace")
        return [line for line in text.splitlines() if PROBLEM.search(line)]


@dataclass
class Servers:
    """Servers started here, each logging to a file of log_dir; stop() ends every one."""

    log_dir: Path
    started: dict[str, Server] = field(default_factory=dict)
    found: dict[str, list[str]] = field(default_factory=dict)  # problems(), read by stop()

    def start(self, name: str, command: list[str], env: dict[str, str], port: int) -> Server:
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.started[name] = Server(name, process, port, log_path, log)
        return self.started[name]

    def uvicorn(self, name: str, app: str, env: dict[str, str], *options: str) -> Server:
        """One uvicorn process with its defaults (auto loop and HTTP parser), access log off;
        returned once /healthz answers 200."""
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log", *options]
        server = self.start(name, command, env, port)
        wait_until(server, lambda: httpx.get(f"{server.url}/healthz", timeout=1).is_success)
        return server

    def stop(self) -> None:
        for server in self.started.values():
            if server.process.poll() is None:
                server.process.terminate()
        for server in self.started.values():
            try:
                server.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=STOP_TIMEOUT_S)
            server.log.close()
        self.found = self.problems()

    def problems(self) -> dict[str, list[str]]:
        return {name: server.problems() for name, server in self.started.items()}


@contextmanager
def servers(log_dir: Path) -> Iterator[Servers]:
    started = Servers(log_dir)
    try:
        yield started
    finally:
        started.stop()


def wait_until(server: Server, ready: Callable[[], bool]) -> None:
    """Until ready() is true; raises when the server exits or START_TIMEOUT_S passes."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log_path.read_text()[-4000:]}")
        try:
            if ready():
                return
        except (OSError, httpx.TransportError, redis.RedisError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{server.name} was not ready in {START_TIMEOUT_S} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_idle(pids: list[int], timeout_s: float = 20, busy_share: float = 0.05) -> None:
    """Until the processes together use under `busy_share` of one CPU over 0.2 s (or timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(0.2)
        if sum(cpu_seconds(pid) for pid in pids) - before < 0.2 * busy_share:
            return


def machine() -> str:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"
