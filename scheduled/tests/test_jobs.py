"""One way to run a job, reached from Beat, manage.py, Lambda and a real worker on RabbitMQ."""

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from celery.schedules import crontab, schedule
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from common.domain import services
from common.domain.models import Event
from common.tests.factories import ProjectFactory, UserFactory
from scheduled.celery import app
from scheduled.jobs import JOBS, UnknownJob, run_job

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


def old_event() -> Event:
    project = ProjectFactory()
    services.task_create(actor=None, project=project, title="t", due_date=timezone.now())
    Event.objects.update(occurred_at=timezone.now() - timedelta(days=8))
    return Event.objects.get()


def test_beat_runs_every_job_through_run_job_on_its_schedule():
    beat = app.conf.beat_schedule

    assert set(beat) == {
        "send_due_reminders",
        "generate_project_summaries",
        "prune_events",
        "relay_webhooks",
    }
    assert set(beat) < set(JOBS)
    assert all(entry["task"] == "scheduled.run_job" for entry in beat.values())
    assert all(entry["args"] == [name] for name, entry in beat.items())
    reminders = beat["send_due_reminders"]
    assert isinstance(reminders["schedule"], schedule)
    assert reminders["schedule"].run_every == timedelta(minutes=5)
    assert reminders["options"]["expires"] < 5 * 60  # a late run never overlaps the next
    summaries = beat["generate_project_summaries"]["schedule"]
    assert isinstance(summaries, crontab)
    assert (summaries.hour, summaries.minute) == ({8}, {0})
    assert isinstance(beat["prune_events"]["schedule"], crontab)
    relay = beat["relay_webhooks"]
    assert relay["schedule"].run_every == timedelta(seconds=10)
    assert relay["options"]["expires"] < 10


def test_celery_settings_are_json_only_acks_late_one_at_a_time_and_bounded():
    conf = app.conf

    assert (conf.task_serializer, conf.accept_content) == ("json", ["json"])
    assert conf.task_acks_late
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_ignore_result
    assert conf.result_backend is None
    assert conf.timezone == settings.TIME_ZONE


def test_run_job_runs_a_job_by_name_and_refuses_unknown_names():
    old_event()

    assert run_job("prune_events") == {"pruned": 1, "tokens_flushed": 0}
    with pytest.raises(UnknownJob):
        run_job("nope")


def test_manage_py_run_job_prints_what_the_job_did():
    old_event()
    out = StringIO()

    call_command("run_job", "prune_events", stdout=out)

    assert json.loads(out.getvalue()) == {
        "job": "prune_events",
        "result": {"pruned": 1, "tokens_flushed": 0},
    }
    with pytest.raises(CommandError, match="no job 'nope'"):
        call_command("run_job", "nope")


def test_the_lambda_scheduled_handler_runs_the_job_in_the_event():
    from scheduled.handler import handler

    old_event()

    assert handler({"job": "prune_events"}, None) == {
        "job": "prune_events",
        "result": {"pruned": 1, "tokens_flushed": 0},
    }
    with pytest.raises(ValueError, match="job"):
        handler({"nothing": 1}, None)


def test_a_real_worker_runs_a_job_sent_through_rabbitmq():
    old_event()
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "common.infra.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "scheduled.celery",
        "worker",
        "--pool",
        "solo",
        "--queues",
        queue,
        "--loglevel",
        "info",
        "--without-heartbeat",
        "--without-gossip",
    ]
    worker = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        app.send_task("scheduled.run_job", args=["prune_events"], queue=queue)
        deadline = time.monotonic() + 60
        while Event.objects.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode()
        with app.connection_for_write() as broker:  # the test's queue goes with it
            broker.default_channel.queue_delete(queue)

    assert not Event.objects.exists(), output
    assert "job prune_events: {'pruned': 1, 'tokens_flushed': 0}" in output


def test_prune_events_flushes_expired_refresh_tokens_and_keeps_live_ones():
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
    from rest_framework_simplejwt.tokens import RefreshToken

    user = UserFactory()
    live = RefreshToken.for_user(user)  # recorded as outstanding
    expired = RefreshToken.for_user(user)
    expired.blacklist()
    OutstandingToken.objects.filter(jti=expired["jti"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert run_job("prune_events")["tokens_flushed"] == 1
    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == [live["jti"]]
    assert not BlacklistedToken.objects.exists()
