"""The processes of bench.ws_latency: the bench database, the servers, their CPU, memory and logs.

Every server is a child process of the benchmark on 127.0.0.1, started with an environment of its
own (nothing inherited that could change the settings, such as the test suite's
DJANGO_SETTINGS_MODULE) and logging to one file per server.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from psycopg import sql

from bench._list_cache_servers import Server, stop_servers

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DATABASE = "taskwire_bench"
DATABASE_URL = f"postgres://postgres@{HOST}:5432/{DATABASE}"
MAINTENANCE_URL = f"postgresql://postgres@{HOST}:5432/postgres"
REDIS_URL = f"redis://{HOST}:6379/0"
SECRET_KEY = "bench-ws-latency-only-signing-key-not-a-secret-anywhere-at-all-ever"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
SETUP_TIMEOUT_S = 300
PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_env(redis_prefix: str) -> dict[str, str]:
    """The whole environment of the Django processes: production settings on the bench database,
    a Redis prefix of this run only, and tokens that outlive any run."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "common.settings",
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": redis_prefix,
        "DB_CONN_MAX_AGE": "60",
        "JWT_ACCESS_MINUTES": "240",
    }


def ensure_database() -> None:
    """Create the bench database if missing (it is kept afterwards, with its data)."""
    with psycopg.connect(MAINTENANCE_URL, autocommit=True, connect_timeout=5) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]
        ).fetchone()
        if not found:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def prepare_data(env: dict[str, str]) -> dict[str, Any]:
    """Migrate the bench database, then make this run's project: bench._ws_setup's JSON."""
    ensure_database()
    migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
    _run(migrate, env)
    setup = _run([sys.executable, "-m", "bench._ws_setup"], env)
    return json.loads(setup.strip().splitlines()[-1])


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=SETUP_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def start(name: str, command: list[str], env: dict[str, str], port: int, log_dir: Path) -> Server:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return Server(name, process, port, log_path, log)


def start_uvicorn(name: str, app: str, env: dict[str, str], log_dir: Path, *options: str) -> Server:
    """One uvicorn process: its defaults (uvloop, httptools, websockets-sansio) plus `options`."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port), *options]
    return start(name, [*command, "--log-level", "warning"], env, port, log_dir)


def start_reference(channel: str, log_dir: Path) -> Server:
    port = free_port()
    env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "bench._ws_reference_server", str(port), REDIS_URL, channel]
    return start("reference", command, env, port, log_dir)


def wait_healthy(server: Server) -> None:
    """Until the server answers GET /healthz with 200."""
    url = f"http://{HOST}:{server.port}/healthz"
    _wait(server, lambda: httpx.get(url, timeout=1).status_code == 200)


def wait_subscribed(server: Server, channel: str) -> None:
    """Until the reference server listens and has subscribed to its channel."""

    def ready() -> bool:
        with socket.create_connection((HOST, server.port), timeout=1):
            pass
        with redis.Redis.from_url(REDIS_URL) as client:
            return dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) > 0

    _wait(server, ready)


def _wait(server: Server, ready) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{log_tail(server, 40)}")
        try:
            if ready():
                return
        except (OSError, httpx.TransportError, redis.RedisError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{server.name} on port {server.port} was not ready in {START_TIMEOUT_S} s")


# Servers here have the same shape (process, log) as the list_cache bench's.
stop = stop_servers


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_idle(pids: list[int], timeout_s: float = 20, busy_share: float = 0.05) -> None:
    """Until the processes together use under `busy_share` of one CPU over 0.2 s (or timeout):
    a server still closing the last phase's connections would slow the next phase."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(0.2)
        if sum(cpu_seconds(pid) for pid in pids) - before < 0.2 * busy_share:
            return


def log_problems(server: Server) -> list[str]:
    """The lines of the server's log that are warnings, errors or tracebacks."""
    text = server.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if PROBLEM.search(line)]


def log_tail(server: Server, lines: int) -> str:
    if not server.log.closed:
        server.log.flush()
    return "\n".join(server.log_path.read_text(errors="replace").splitlines()[-lines:])
