"""The processes of bench.list_cache: the bench database, the uvicorn servers, Redis, the logs.

Every child runs on 127.0.0.1 with an environment of its own (nothing inherited that could change
the settings, such as the test suite's DJANGO_SETTINGS_MODULE or DATABASE_URL).
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import psycopg
import redis

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DATABASE = "taskwire_listbench"
MAINTENANCE_URL = f"postgresql://postgres@{HOST}:5432/postgres"
REDIS_URL = f"redis://{HOST}:6379/0"
SECRET_KEY = "bench-list-cache-only-signing-key-not-a-secret-anywhere-at-all-ever"
UVICORN_OPTIONS = ("--log-level", "warning", "--no-access-log")  # loop and http: auto
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
SETUP_TIMEOUT_S = 300
PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


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


def redis_prefix() -> str:
    """This run's own Redis prefix: nothing shared with another run or the test suite."""
    return f"taskwire-listbench-{os.getpid()}"


def cache_key(prefix: str, name: str) -> str:
    """A pattern matching the list cache's key for `name` in any generation (common.cache.store)."""
    return f"{prefix}:*:{name}"


def database_url(database: str) -> str:
    return f"postgres://postgres@{HOST}:5432/{database}"


def server_env(prefix: str, database: str, **extra: str) -> dict[str, str]:
    """The whole environment of a child: production settings on the bench database."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "common.settings",
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": database_url(database),
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        "JWT_ACCESS_MINUTES": "120",
        **extra,
    }


def ensure_database(database: str) -> None:
    """Create the bench database if it is missing (it is kept afterwards, with its data)."""
    with psycopg.connect(MAINTENANCE_URL, autocommit=True, connect_timeout=5) as connection:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        if connection.execute(query, [database]).fetchone() is None:
            connection.execute(f'CREATE DATABASE "{database}"')


def run_module(module: str, args: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run `python -m module args` in `env`; its last stdout line, as JSON."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} exited {done.returncode}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare_database(tasks: int, projects: int, users: int, env: dict[str, str]) -> dict:
    """Create, migrate and seed the bench database of `env`; {"token", "reseeded", ...}."""
    ensure_database(env["DATABASE_URL"].rsplit("/", 1)[1])
    counts = ["--tasks", str(tasks), "--projects", str(projects), "--users", str(users)]
    return run_module("bench._list_cache_seed", counts, env, SETUP_TIMEOUT_S)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(name: str, app: str, env: dict[str, str], log_dir: Path) -> Server:
    """One uvicorn process (one worker, default loop and HTTP parser) serving `app`."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    command = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]
    process = subprocess.Popen(
        [*command, *UVICORN_OPTIONS], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    return Server(name, process, port, log_path, log)


def wait_until_healthy(server: Server) -> str:
    """Wait for /healthz to answer 200; its body."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log_path.read_text()}")
        try:
            answer = httpx.get(f"{server.url}/healthz", timeout=1)
            if answer.status_code == 200:
                return answer.text
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{server.name} did not answer /healthz in {START_TIMEOUT_S} s")


def stop_servers(servers: list[Server]) -> None:
    """Terminate each server started here (by its own process), then wait for it."""
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=STOP_TIMEOUT_S)
        server.log.close()


@contextmanager
def running(specs: dict[str, tuple[str, dict[str, str]]], log_dir: Path) -> Iterator[dict]:
    """Start every server of `specs` (name -> (app, env)), wait for all; always stop them."""
    servers: list[Server] = []
    try:
        for name, (app, env) in specs.items():
            servers.append(start_server(name, app, env, log_dir))
        for server in servers:
            wait_until_healthy(server)
        yield {server.name: server for server in servers}
    finally:
        stop_servers(servers)


def log_problems(servers: dict[str, Server], limit: int = 5) -> dict[str, list[str]]:
    """name -> the first warning, error or traceback lines of that server's log."""
    found = {}
    for name, server in servers.items():
        lines = server.log_path.read_text(errors="replace").splitlines()
        found[name] = [line for line in lines if PROBLEM.search(line)][:limit]
    return found


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


def page_keys(client: redis.Redis, prefix: str) -> list[bytes]:
    """The cached /tasks/ pages of this run."""
    return list(client.scan_iter(match=cache_key(prefix, "page:tasks:*"), count=1000))


def drop_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key of this run's prefix; how many there were."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted
