"""Across processes: functions and the realtime app each under their own uvicorn, as in compose.

HTTP writes to the function processes reach a websocket client of the realtime process through
Redis; the processes share the test database.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from rest_framework_simplejwt.tokens import AccessToken

from common.domain.models import Event
from common.tests.factories import ProjectFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on {port} exited: {process.stdout.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"server on {port} did not answer /healthz")


@pytest.fixture(scope="module")
def servers(django_db_setup, tmp_path_factory) -> Iterator[dict[str, int]]:
    """uvicorn processes: two of the tasks function, one of comments, one realtime."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "common.infra.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
    }
    apps = {
        "tasks": "functions.tasks.handler:application",
        "tasks2": "functions.tasks.handler:application",
        "comments": "functions.comments.handler:application",
        "realtime": "realtime.handler:application",
    }
    ports = {name: _free_port() for name in apps}
    log_path = tmp_path_factory.mktemp("servers") / "servers.log"
    log = log_path.open("w")
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app,
                "--port",
                str(ports[name]),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for name, app in apps.items()
    ]
    try:
        for name, process in zip(apps, processes, strict=True):
            _wait_until_healthy(ports[name], process)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        log.close()
        print(log_path.read_text())  # shown with any failure of this module


@pytest.fixture
def token() -> str:
    return str(AccessToken.for_user(UserFactory(username="alice")))


async def _next_event(ws) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if message["type"] != "ping":
            return message


async def test_http_writes_in_function_processes_reach_a_websocket_client(servers, token):
    project = await database_sync_to_async(ProjectFactory)(owner__username="alice")
    headers = {"Authorization": f"Bearer {token}"}
    ws_url = f"ws://127.0.0.1:{servers['realtime']}/ws/notifications/?token={token}"
    tasks = f"http://127.0.0.1:{servers['tasks']}/tasks/"
    comments = f"http://127.0.0.1:{servers['comments']}/tasks/{{}}/comments/"

    async with websockets.connect(ws_url) as ws, httpx.AsyncClient(headers=headers) as http:
        await ws.send(json.dumps({"action": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) == {"type": "pong"}

        body = {"project": project.id, "title": "E2E", "due_date": "2030-01-01T00:00:00Z"}
        task = (await http.post(tasks, json=body)).json()
        created = await _next_event(ws)
        updated_task = (
            await http.patch(f"{tasks}{task['id']}/", json={"status": "completed"})
        ).json()
        updated = await _next_event(ws)
        comment = (await http.post(comments.format(task["id"]), json={"content": "done"})).json()
        commented = await _next_event(ws)
        assert (await http.delete(f"{tasks}{task['id']}/")).status_code == 204
        deleted = await _next_event(ws)

    assert (created["type"], created["seq"], created["actor"]) == ("task.created", 1, "alice")
    assert created["data"] == task
    assert (updated["type"], updated["data"]) == ("task.updated", updated_task)
    assert commented["type"] == "comment.created"
    assert commented["data"] == {**comment, "task_title": "E2E"}
    assert (deleted["type"], deleted["data"]) == (
        "task.deleted",
        {"id": task["id"], "project": project.id},
    )
    assert [e["seq"] for e in (created, updated, commented, deleted)] == [1, 2, 3, 4]


async def test_fifty_concurrent_writes_in_one_project_arrive_once_each_in_seq_order(servers, token):
    project = await database_sync_to_async(ProjectFactory)(owner__username="alice")
    headers = {"Authorization": f"Bearer {token}"}
    ws_url = f"ws://127.0.0.1:{servers['realtime']}/ws/notifications/?token={token}&projects={project.id}"
    function_urls = [f"http://127.0.0.1:{servers[name]}/tasks/" for name in ("tasks", "tasks2")]

    async with (
        websockets.connect(ws_url) as ws,
        httpx.AsyncClient(headers=headers, timeout=30) as http,
    ):
        answers = await asyncio.gather(
            *(
                http.post(
                    function_urls[n % 2],
                    json={
                        "project": project.id,
                        "title": f"t{n}",
                        "due_date": "2030-01-01T00:00:00Z",
                    },
                )
                for n in range(50)
            )
        )
        events = [await _next_event(ws) for _ in range(50)]

    assert [answer.status_code for answer in answers] == [201] * 50
    assert [event["seq"] for event in events] == list(range(1, 51))
    assert {event["data"]["id"] for event in events} == {answer.json()["id"] for answer in answers}
    logged = await database_sync_to_async(
        lambda: list(Event.objects.filter(project_id=project.id).values_list("seq", flat=True))
    )()
    assert logged == list(range(1, 51))
