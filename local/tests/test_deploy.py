"""The Dockerfile and docker-compose.yml, checked without a Docker engine (none on these machines).

The static checks: the compose file against the compose spec, the Dockerfile through hadolint,
every app service's command resolving to real code, the gateway's nginx.conf being the route
table. The live check: every compose app service's own command, run here against this machine's
PostgreSQL, Redis, RabbitMQ and a moto server, with production settings, behind nginx running the
committed gateway configuration.
"""

import importlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands
from django.db import connection
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from local import nginx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
IMAGE = "taskwire:latest"
APP_SERVICES = {name: s for name, s in SERVICES.items() if s.get("image") == IMAGE}
HTTP_SERVICES = ("projects", "tasks", "comments", "auth", "realtime", "admin")


def _service_env(env: dict, name: str) -> dict:
    """`env` with what compose sets for this service alone: its settings module."""
    own = SERVICES[name].get("environment", {}).get("DJANGO_SETTINGS_MODULE")
    return {**env, "DJANGO_SETTINGS_MODULE": own} if own else env


def test_the_compose_file_is_valid_against_the_compose_spec():
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_passes_hadolint():
    result = subprocess.run(
        [BIN / "hadolint", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_non_root_user():
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_topology_has_every_role_and_the_infrastructure_has_healthchecks():
    roles = {"migrate", "ses-init", *HTTP_SERVICES, "worker", "beat"}
    assert set(APP_SERVICES) == roles
    for name in ("postgres", "redis", "rabbitmq", "ses"):
        assert "healthcheck" in SERVICES[name], name
    for name in HTTP_SERVICES:
        assert SERVICES[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert SERVICES["gateway"]["depends_on"][name] == {"condition": "service_healthy"}


def test_the_healthchecks_check_what_dependents_need():
    # RabbitMQ: its AMQP port takes connections (`ping` passes about 10 s before it does).
    assert SERVICES["rabbitmq"]["healthcheck"]["test"] == [
        "CMD",
        "rabbitmq-diagnostics",
        "-q",
        "check_port_connectivity",
    ]
    # The worker: its own node answers through the broker; Beat: its broker answers.
    worker = SERVICES["worker"]["healthcheck"]["test"]
    assert worker[0] == "CMD-SHELL"
    assert "inspect ping" in worker[1]
    assert '--destination "celery@$$(hostname)"' in worker[1]  # $$: compose's literal $
    assert SERVICES["beat"]["healthcheck"]["test"] == ["CMD", "python", "-m", "scheduled.ready"]
    # The gateway: /healthz through nginx to a function.
    assert SERVICES["gateway"]["healthcheck"]["test"] == [
        "CMD",
        "/usr/local/bin/taskwire-healthcheck",
    ]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["gateway"]["volumes"]}
    assert (ROOT / mounts["/usr/local/bin/taskwire-healthcheck"]).stat().st_mode & 0o111
    assert (ROOT / mounts["/docker-entrypoint.d/15-taskwire-resolver.sh"]).stat().st_mode & 0o111


def test_what_compose_publishes_is_on_this_machine_only():
    published = [port for s in SERVICES.values() for port in s.get("ports", [])]
    assert published
    assert all(port.startswith("127.0.0.1:") for port in published), published


@pytest.mark.parametrize(
    ("resolv_conf", "resolver"),
    [
        ("nameserver 127.0.0.11\noptions ndots:0\n", "127.0.0.11"),  # Docker
        ("search dns.podman\nnameserver 10.89.0.1\nnameserver 10.255.255.53\n", "10.89.0.1"),
        ("nameserver fd00::1\n", "[fd00::1]"),
    ],
)
def test_the_gateway_resolves_through_the_networks_own_dns(tmp_path, resolv_conf, resolver):
    (tmp_path / "resolv.conf").write_text(resolv_conf)
    result = subprocess.run(
        ["sh", ROOT / "deploy" / "gateway" / "15-resolver.sh"],
        env={
            "PATH": os.environ["PATH"],
            "TASKWIRE_RESOLV_CONF": str(tmp_path / "resolv.conf"),
            "TASKWIRE_RESOLVER_CONF": str(tmp_path / "resolver.conf"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "resolver.conf").read_text() == (
        f"resolver {resolver} valid={nginx.RESOLVE_VALID} ipv6=off;\nresolver_timeout 5s;\n"
    )


def test_the_gateway_names_each_function_per_request_not_once_at_start():
    config = nginx.render()
    # An upstream block resolves its names once, at start.
    assert not re.search(r"^\s*upstream \S+ \{", config, re.MULTILINE)
    for target in nginx.targets():
        assert f"set $taskwire_upstream {target}:{nginx.PORT};" in config
    assert config.count("proxy_pass http://$taskwire_upstream;") == len(
        [t for _, t in nginx.ROUTES if t not in nginx.LOCAL_ONLY]
    )


def test_no_secret_is_committed():
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert example["SECRET_KEY"] == example["POSTGRES_PASSWORD"] == ""
    assert example["RABBITMQ_PASSWORD"] == ""
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "SECRET_KEY" not in compose  # it comes from .env only
    for variable in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"):  # required, no default
        uses = re.findall(rf"\$\{{{variable}([^}}]*)\}}", compose)
        assert uses, variable
        assert all(use.startswith(":?") for use in uses), variable


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_every_app_service_command_resolves_to_real_code(name):
    command = APP_SERVICES[name]["command"]
    program, args = command[0], command[1:]
    if program == "uvicorn":
        module, attribute = args[0].split(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    elif program == "celery":
        assert args[0] == "-A"
        assert importlib.import_module(args[1]).app.main == "taskwire"
        assert args[2] in {"worker", "beat"}
    elif program == "python" and args[0] == "-m":
        assert importlib.util.find_spec(args[1]) is not None
    elif program == "python" and args[0] == "manage.py":
        assert args[1] in get_commands()
    else:
        pytest.fail(f"{name}: unknown program {program!r}")


def test_the_gateway_config_is_the_route_table():
    committed = (ROOT / "deploy" / "nginx.conf").read_text()
    assert committed == nginx.render(), "regenerate it: make gateway-conf"
    mounted = SERVICES["gateway"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == ROOT / "deploy" / "nginx.conf"
    assert set(nginx.targets()) == set(HTTP_SERVICES)


# --- the live run ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _here(command: list[str], port: int | None = None) -> list[str]:
    """A compose command as this machine runs it: this virtualenv, 127.0.0.1, a free port."""
    command = list(command)
    if command[0] in {"uvicorn", "celery"}:
        command = [sys.executable, "-m", *command]
    elif command[0] == "python":
        command[0] = sys.executable
    command = ["127.0.0.1" if arg == "0.0.0.0" else arg for arg in command]
    if "--port" in command:
        command[command.index("--port") + 1] = str(port)
    return command


class Processes(ExitStack):
    def start(self, command: list[str], env: dict, log: Path) -> subprocess.Popen:
        output = log.open("wb")
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
        self.callback(_stop, process)
        self.callback(output.close)
        return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_for(check, what: str, seconds: float = 60, log: Path | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} did not answer" + (f":\n{log.read_text()}" if log else ""))


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
@pytest.mark.django_db(transaction=True)
def test_each_app_service_command_answers_here_behind_the_gateway(moto_server, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "common.infra.settings",  # the image's, as Dockerfile sets it
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SES_ENDPOINT_URL": moto_server,
    }
    one_shots = {}
    for name in ("migrate", "ses-init"):
        one_shots[name] = subprocess.run(
            _here(APP_SERVICES[name]["command"]),
            cwd=ROOT,
            env=_service_env(env, name),
            capture_output=True,
            text=True,
        )
    # A user, made as an operator would (CONTRACT section 4), hashed as production hashes.
    one_shots["createsuperuser"] = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=ROOT,
        env={
            **env,
            "DJANGO_SUPERUSER_USERNAME": "ops",
            "DJANGO_SUPERUSER_PASSWORD": "ops-pass-1",
            "DJANGO_SUPERUSER_EMAIL": "ops@example.com",
        },
        capture_output=True,
        text=True,
    )
    for name, result in one_shots.items():
        assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
    assert "No migrations to apply" in one_shots["migrate"].stdout
    assert "verified noreply@taskwire.local" in one_shots["ses-init"].stdout

    with Processes() as processes:
        ports = {}
        for name in HTTP_SERVICES:
            ports[name] = _free_port()
            log = tmp_path / f"{name}.log"
            command = _here(APP_SERVICES[name]["command"], ports[name])
            processes.start(command, _service_env(env, name), log)
        for name in HTTP_SERVICES:
            url = f"http://127.0.0.1:{ports[name]}/healthz"
            log = tmp_path / f"{name}.log"
            _wait_for(lambda url=url: httpx.get(url).status_code == 200, name, log=log)

        gateway = _start_nginx(processes, ports, tmp_path)
        _through_the_gateway(gateway)

        from scheduled.celery import app

        queue = f"deploy-test-{uuid.uuid4().hex[:8]}"  # kept apart from any other worker
        processes.callback(_delete_queue, app, queue)  # after the worker has stopped
        worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
        worker = processes.start(
            [*_here(APP_SERVICES["worker"]["command"]), "--queues", queue], env, worker_log
        )
        beat_command = _here(APP_SERVICES["beat"]["command"])
        beat_command[beat_command.index("--schedule") + 1] = str(tmp_path / "beat-schedule")
        beat_command[beat_command.index("--loglevel") + 1] = "DEBUG"  # says when it wakes next
        beat = processes.start(beat_command, env, beat_log)

        app.send_task("scheduled.run_job", args=["prune_events"], queue=queue)
        _wait_for(lambda: "job prune_events:" in worker_log.read_text(), "worker", log=worker_log)
        _wait_for(lambda: "beat: Waking up in" in beat_log.read_text(), "beat", log=beat_log)
        assert worker.poll() is None
        assert beat.poll() is None


def _delete_queue(app, queue: str) -> None:
    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(queue)


def _start_nginx(processes: Processes, ports: dict[str, int], tmp_path: Path) -> str:
    """nginx with the committed gateway configuration, its upstreams pointed at this machine."""
    port = _free_port()
    upstreams = {name: f"127.0.0.1:{ports[name]}" for name in nginx.targets()}
    server = nginx.render(upstreams=upstreams, listen=f"127.0.0.1:{port}")
    prefix = Path(tempfile.mkdtemp(dir=tmp_path))
    (prefix / "logs").mkdir()
    (prefix / "nginx.conf").write_text(
        "daemon off;\nerror_log stderr;\npid nginx.pid;\nevents {}\n"
        f"http {{\naccess_log off;\n{server}}}\n"
    )
    log = tmp_path / "nginx.log"
    processes.start(["nginx", "-p", str(prefix), "-c", "nginx.conf"], os.environ.copy(), log)
    gateway = f"127.0.0.1:{port}"
    _wait_for(lambda: httpx.get(f"http://{gateway}/healthz").status_code == 200, "nginx", log=log)
    return gateway


def _through_the_gateway(gateway: str) -> None:
    """Every route reaches its function (401: the path is known there), and a write is announced."""
    with httpx.Client(base_url=f"http://{gateway}") as client:
        for path in ("/projects/", "/tasks/", "/tasks/1/comments/", "/auth/me/"):
            response = client.get(path)
            assert response.status_code == 401, (path, response.text)
        assert client.get("/readyz").json()["status"] == "ok"
        missing = client.get("/docs/")  # local runs only: no route here
        assert (missing.status_code, missing.json()) == (404, {"detail": "Not found."})

        token = client.post("/auth/token/", json={"username": "ops", "password": "ops-pass-1"})
        headers = {"Authorization": f"Bearer {token.json()['access']}"}
        with connect(f"ws://{gateway}/ws/notifications/?token={token.json()['access']}") as ws:
            project = client.post("/projects/", json={"name": "Compose"}, headers=headers)
            assert project.status_code == 201, project.text
            event = json.loads(ws.recv(timeout=10))
        assert (event["type"], event["data"]["name"]) == ("project.created", "Compose")
        client.post("/projects/", json={"name": "Second"}, headers=headers)
        page = client.get("/projects/?page_size=1", headers=headers).json()
        assert page["next"].startswith(f"http://{gateway}/projects/")  # the Host, port and all
        with pytest.raises(InvalidStatus):  # as the local gateway: websockets to realtime only
            connect(f"ws://{gateway}/projects/?token={token.json()['access']}")
    _sign_in_to_the_admin(gateway)


def _sign_in_to_the_admin(gateway: str) -> None:
    """The operator signs in to the admin through the gateway, CSRF and session cookies and all,
    and its stylesheet comes from the admin function."""
    with httpx.Client(base_url=f"http://{gateway}") as client:
        assert client.get("/static/admin/css/base.css").status_code == 200
        login = client.get("/admin/login/")
        assert login.status_code == 200, login.text
        form = {"username": "ops", "password": "ops-pass-1", "next": "/admin/"}
        form["csrfmiddlewaretoken"] = client.cookies["csrftoken"]
        signed_in = client.post("/admin/login/", data=form, headers={"Referer": str(login.url)})
        assert (signed_in.status_code, signed_in.headers["location"]) == (302, "/admin/")
        index = client.get("/admin/")
        assert index.status_code == 200
        assert "Taskwire admin" in index.text
