"""A committed write shows in the next list read whatever Redis did: froze, or came back old.

Each test runs a private redis-server on a port of its own (the shared one is never touched),
freezes it with SIGSTOP or restarts it from its own RDB snapshot, and reads through the hit path
in front of Django and through Django itself.
"""

import os
import signal
import socket
import subprocess
import time

import httpx
import pytest
import redis
from asgiref.sync import async_to_sync
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from common.domain import services
from common.infra.cache.store import store
from common.tests.factories import MembershipFactory, ProjectFactory, TaskFactory

PREFIX = "faults"


def _wait_until(check, what: str, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds}s")


class PrivateRedis:
    """A redis-server of this test's own, persisting to `directory` only when told (SAVE)."""

    def __init__(self, directory) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.directory), "--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        _wait_until(self._answers, "the private redis-server")

    def _answers(self) -> bool:
        try:
            return self.client().ping()
        except redis.ConnectionError:
            return False

    def crash(self) -> None:
        self.process.kill()  # no shutdown: what is not in the snapshot is gone
        self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def caches(self) -> dict:
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": self.url,
                "KEY_PREFIX": PREFIX,
                "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
            }
        }

    def version_of(self, name: str) -> int | None:
        client = self.client()
        try:
            keys = list(client.scan_iter(match=f"{PREFIX}:*version:{name}"))
            return max((int(client.get(key)) for key in keys), default=None)
        finally:
            client.close()


@pytest.fixture
def private_redis(tmp_path, settings):
    server = PrivateRedis(tmp_path)
    server.start()
    settings.CACHES = server.caches()
    settings.ALLOWED_HOSTS = ["testserver"]
    yield server
    os.kill(server.process.pid, signal.SIGCONT)
    server.process.kill()
    server.process.wait(timeout=10)


def _reader(through: str, project):
    """GET /tasks/ as a new viewer of `project`, through the hit path in front of Django
    (`front`), or Django alone."""
    from functions.tasks.handler import application

    app = application if through == "front" else application.app
    user = MembershipFactory(project=project, role="viewer").user
    headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/tasks/", headers=headers)

    def read() -> tuple[list[int], str]:
        response = async_to_sync(get)()
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]], response.headers["x-cache"]

    return read


def _new_task(project):
    # Autocommit: the write commits, and its after-commit bump runs, before this returns.
    return services.task_create(actor=None, project=project, title="new", due_date=timezone.now())


def _as_if_the_skip_had_passed() -> None:
    store().skip_until = 0.0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("through", ["front", "django"])
def test_a_write_while_redis_is_frozen_shows_in_the_next_read(private_redis, through):
    project = ProjectFactory()
    old = TaskFactory(project=project)
    read, read_django = _reader(through, project), _reader("django", project)
    assert [read()[1] for _ in range(2)] == ["miss", "hit"]

    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        assert read_django() == ([old.id], "miss")  # a read meanwhile times out: the database
        new = _new_task(project)  # its bump cannot reach Redis
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
    _as_if_the_skip_had_passed()

    assert read()[0] == [old.id, new.id]
    assert read()[0] == [old.id, new.id]


@pytest.mark.django_db(transaction=True)
def test_a_bump_redis_missed_is_recorded_in_the_background_without_a_read(private_redis):
    project = ProjectFactory()
    TaskFactory(project=project)
    read = _reader("django", project)
    read()
    before = private_redis.version_of("tasks")

    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        read()  # times out: the connection it had is gone
        _new_task(project)
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)

    _wait_until(lambda: (private_redis.version_of("tasks") or 0) > before, "the retried bump")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("through", ["front", "django"])
def test_a_write_shows_after_redis_restarts_from_an_older_snapshot(private_redis, through):
    project = ProjectFactory()
    old = TaskFactory(project=project)
    read = _reader(through, project)
    assert [read()[1] for _ in range(2)] == ["miss", "hit"]
    private_redis.client().save()  # the snapshot has the page and the versions it is under

    new = _new_task(project)  # bumped in memory only
    private_redis.crash()
    private_redis.start()  # from the snapshot: the old versions and the old page are back

    assert read()[0] == [old.id, new.id]
    _as_if_the_skip_had_passed()
    assert read() == ([old.id, new.id], "miss")
    assert read() == ([old.id, new.id], "hit")
