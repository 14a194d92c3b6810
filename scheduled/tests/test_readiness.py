"""The broker in the readiness of the processes that use it, and the workers' healthcheck."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from common.api import health
from local.workers import WorkerProcesses

ROOT = Path(__file__).resolve().parents[2]


def closed_broker_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"amqp://guest:guest@127.0.0.1:{port}//"


@pytest.mark.django_db
def test_readyz_of_the_process_running_the_workers_names_the_broker_when_it_is_down(
    client, settings, monkeypatch, tmp_path
):
    settings.ROOT_URLCONF = "common.api.urls"
    monkeypatch.setattr(health, "READINESS_CHECKS", dict(health.READINESS_CHECKS))
    WorkerProcesses(schedule_file=tmp_path / "schedule")  # not started: it only has to exist
    up = client.get("/readyz")
    settings.CELERY_BROKER_URL = closed_broker_url()

    down = client.get("/readyz")

    assert (up.status_code, up.json()["checks"]["broker"]) == (200, "ok")
    assert down.status_code == 503
    assert down.json() == {
        "status": "unavailable",
        "failed": ["broker"],
        "checks": {"database": "ok", "cache": "ok", "broker": "down"},
    }


@pytest.mark.django_db
def test_the_workers_healthcheck_command_exits_0_only_while_the_broker_answers():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "common.infra.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
    }

    def ready(broker_url: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "scheduled.ready"]
        return subprocess.run(
            command, cwd=ROOT, env={**env, "CELERY_BROKER_URL": broker_url}, capture_output=True
        )

    up, down = ready(settings.CELERY_BROKER_URL), ready(closed_broker_url())

    assert up.returncode == 0, up.stderr
    assert down.returncode == 1
    assert b"not ready: broker" in down.stderr
