"""The realtime service under a real uvicorn, started as compose and the local run start it.

Frame size, access logs and Redis outages are the server's and the logging config's business,
which Channels' communicator never reaches.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from django.conf import settings
from django.db import connection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from local import nginx

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_COMMAND = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["realtime"][
    "command"
]
MAX_FRAME = 64 * 1024
TIMEOUT = 10

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(log: Path, pattern: str, process: subprocess.Popen) -> re.Match:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if match := re.search(pattern, log.read_text()):
            return match
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in the server's output:\n{log.read_text()}")


def _wait_until_answering(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer:\n{log.read_text()}")


@contextmanager
def _serving(command: list[str], env: dict, log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
        try:
            _wait_for(log, r"Uvicorn running on", process)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=20)


def _compose_realtime(port: int) -> list[str]:
    """The compose service's command, as this machine runs it: this virtualenv, a free port."""
    command = [sys.executable, "-m", *COMPOSE_COMMAND]
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    return command


def _production_env(**overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "common.infra.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        **overrides,
    }


@dataclass
class Server:
    address: str
    log: Path
    process: subprocess.Popen

    def wait_for(self, pattern: str) -> re.Match:
        return _wait_for(self.log, pattern, self.process)


@pytest.fixture(scope="module")
def compose_server(django_db_setup, tmp_path_factory) -> Iterator[Server]:
    """The realtime service under its compose command."""
    port = _free_port()
    log = tmp_path_factory.mktemp("realtime") / "realtime.log"
    with _serving(_compose_realtime(port), _production_env(), log) as process:
        yield Server(f"127.0.0.1:{port}", log, process)


def _ping(ws) -> dict:
    ws.send('{"action": "ping"}')
    return ws.recv(timeout=TIMEOUT)


def _frame_over_64_kib_closes_with_1009(address: str, token: str) -> None:
    with connect(f"ws://{address}/ws/notifications/", subprotocols=["bearer", token]) as ws:
        ws.send(" " * (MAX_FRAME - 100) + '{"action": "ping"}')  # under the bound: read
        assert ws.recv(timeout=TIMEOUT) == '{"type": "pong"}'
        ws.send("x" * (MAX_FRAME + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
    assert closed.value.rcvd.code == 1009


def _no_log_line_carries_the_token(server: Server, token: str) -> None:
    with connect(f"ws://{server.address}/ws/notifications/?token={token}") as ws:
        assert _ping(ws) == '{"type": "pong"}'
    httpx.get(f"http://{server.address}/ws/notifications/?token={token}")  # the access log's
    server.wait_for(r'"WebSocket /ws/notifications/\?\[redacted\]" \[accepted\]')
    server.wait_for(r'"GET /ws/notifications/\?\[redacted\] HTTP/1.1" 404')
    assert token.split(".")[2] not in server.log.read_text()  # not even the signature


def test_a_frame_over_64_kib_closes_the_socket_with_1009(compose_server, token):
    _frame_over_64_kib_closes_with_1009(compose_server.address, token)


def test_no_log_line_of_the_service_carries_a_websocket_token(compose_server, token):
    _no_log_line_carries_the_token(compose_server, token)


def test_the_token_as_a_subprotocol_is_accepted_with_bearer(compose_server, token):
    url = f"ws://{compose_server.address}/ws/notifications/"
    with connect(url, subprotocols=["bearer", token]) as ws:
        assert ws.subprotocol == "bearer"
        assert _ping(ws) == '{"type": "pong"}'


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_no_access_log_line_of_the_gateway_carries_a_websocket_token(
    compose_server, token, tmp_path
):
    port = _free_port()
    upstreams = {target: compose_server.address for target in nginx.targets()}
    server = nginx.render(upstreams=upstreams, listen=f"127.0.0.1:{port}")
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\nerror_log stderr;\npid nginx.pid;\nevents {{}}\nhttp {{\n{server}}}\n"
    )
    command = ["nginx", "-p", str(tmp_path), "-c", "nginx.conf"]
    log = tmp_path / "nginx.log"
    with log.open("wb") as output:
        gateway = subprocess.Popen(command, stdout=output, stderr=output)
        try:
            _wait_until_answering(f"http://127.0.0.1:{port}/healthz", gateway, log)
            with connect(f"ws://127.0.0.1:{port}/ws/notifications/?token={token}") as ws:
                assert _ping(ws) == '{"type": "pong"}'
            logged = Server("", log, gateway).wait_for(r'"GET /ws/notifications/ HTTP/1.1" 101')
        finally:
            gateway.terminate()
            gateway.wait(timeout=20)
    assert token.split(".")[2] not in logged.string


def test_with_redis_down_the_handshake_is_refused_with_1013_not_500(token, tmp_path):
    port = _free_port()
    closed = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    log = tmp_path / "realtime.log"
    url = f"ws://127.0.0.1:{port}/ws/notifications/?token={token}"
    with _serving(_compose_realtime(port), _production_env(REDIS_URL=closed), log) as process:
        with connect(url) as ws, pytest.raises(ConnectionClosed) as refused:
            ws.recv(timeout=TIMEOUT)
        Server("", log, process).wait_for(r"WARNING .*websocket refused")
    assert refused.value.rcvd.code == 1013


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Iterator[tuple[Server, str]]:
    """The one-command local run, embedded, from a newcomer's shell: itself and a token."""
    tmp = tmp_path_factory.mktemp("local-run")
    port = _free_port()
    kept = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    env = {name: os.environ[name] for name in kept if name in os.environ}
    env.update(PORT=str(port), VAR_DIR=str(tmp / "var"))
    log = tmp / "run.log"
    with _serving([sys.executable, "-m", "local.run"], env, log) as process:
        server = Server(f"127.0.0.1:{port}", log, process)
        password = server.wait_for(r"demo user: demo / (\S+)")[1]
        answer = httpx.post(
            f"http://{server.address}/auth/token/", json={"username": "demo", "password": password}
        )
        yield server, answer.json()["access"]


def test_the_local_run_closes_a_frame_over_64_kib_with_1009(local_run):
    server, token = local_run
    _frame_over_64_kib_closes_with_1009(server.address, token)


def test_no_log_line_of_the_local_run_carries_a_websocket_token(local_run):
    server, token = local_run
    _no_log_line_carries_the_token(server, token)
