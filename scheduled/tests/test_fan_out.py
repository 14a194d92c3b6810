"""Reminders fanned out to real workers on RabbitMQ, sending to an SES stub that keeps a rate:
chunks, exactly once, and a worker killed mid-run."""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from bench._ses_stub import SESStub
from common.domain.models import Reminder, Task
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory
from scheduled import reminders
from scheduled.reminders import Claim
from scheduled.tests.workers import workers

pytestmark = pytest.mark.django_db(transaction=True)


def due_tasks(count: int) -> list[Task]:
    project = ProjectFactory(owner=UserFactory(email="owner@example.com"))
    now = timezone.now()
    return [
        TaskFactory(project=project, due_date=now + timedelta(hours=1, seconds=n))
        for n in range(count)
    ]


def wait_for(condition, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def settled() -> bool:
    return not Reminder.objects.filter(status=Reminder.Status.PENDING).exists()


@pytest.fixture
def stub():
    server = SESStub(rate=100, latency_ms=20).start()
    yield server
    server.stop()


def worker_env(stub: SESStub) -> dict[str, str]:
    # No SES_MAX_SEND_RATE: each worker reads the stub's MaxSendRate once.
    return {"SES_ENDPOINT_URL": stub.url, "SES_MAX_SEND_RATE": "0"}


def test_a_run_on_workers_fans_out_in_chunks_every_worker_sends_and_each_task_once(stub):
    tasks = due_tasks(6 * reminders.CHUNK)

    with workers(**worker_env(stub)) as started:
        for _ in range(2):
            started.start("--pool", "threads", "--concurrency", "2")
        started.wait_ready()
        started.send("send_due_reminders")
        assert wait_for(lambda: Reminder.objects.filter(status="sent").count() == len(tasks))
        started.stop()
        outputs = [started.output(0), started.output(1)]

    stats = stub.stats()
    assert stats["by_key"] == {f"task:{task.id}": 1 for task in tasks}
    assert stats["quota_reads"] == 2  # once per worker
    assert "'chunks': 6" in "".join(outputs)
    assert all("job send_reminders" in output for output in outputs)  # both took a share
    assert not Task.objects.filter(reminder_sent_at=None).exists()


def test_a_worker_killed_mid_run_loses_none_and_resends_only_what_was_in_flight(stub):
    tasks = due_tasks(4 * reminders.CHUNK)

    with workers(**worker_env(stub)) as started:
        doomed = started.start("--pool", "threads", "--concurrency", "2")
        started.wait_ready()
        started.send("send_due_reminders")
        assert wait_for(lambda: stub.stats()["accepted"] >= 30)
        os.kill(doomed.pid, signal.SIGKILL)  # mid-send, with its chunks unacknowledged
        doomed.wait(timeout=10)
        started.start("--pool", "threads", "--concurrency", "2")
        assert wait_for(settled)

    counts = stub.stats()["by_key"]
    assert set(counts) == {f"task:{task.id}" for task in tasks}  # every one went out
    twice = {key for key, count in counts.items() if count > 1}
    assert max(counts.values()) <= 2
    assert len(twice) <= 2  # at most the sends in flight on the killed worker's two threads
    assert set(Reminder.objects.values_list("status", flat=True)) == {"sent"}
    resent = Reminder.objects.filter(uncertain_sends__gt=0).values_list("task_id", flat=True)
    assert twice <= {f"task:{task_id}" for task_id in resent}  # each duplicate on record


def test_a_redelivered_chunk_counts_only_its_lowest_held_reminder_as_maybe_sent():
    tasks = due_tasks(3)
    run = Claim("run", timezone.now())
    ids = [reminder_id for reminder_id, _ in reminders._claim(run)]
    chunk = Claim("chunk", timezone.now())

    assert reminders._take(ids, run=run, chunk=chunk) == [(i, 0) for i in ids]
    Reminder.objects.filter(id=ids[0]).update(status="sent")  # sent and committed; then killed
    redelivered = Claim("chunk", timezone.now() + timedelta(seconds=1))
    other = Claim("other", timezone.now())

    assert reminders._take(ids, run=run, chunk=other) == []  # the run's claim is gone
    assert reminders._take(ids, run=run, chunk=redelivered) == [(ids[1], 1), (ids[2], 0)]
    assert len(tasks) == 3


def test_a_chunk_the_database_failed_is_run_again_and_sends_its_reminders(ses):
    from unittest import mock

    from django.db import OperationalError

    from scheduled.celery import run_job

    tasks = due_tasks(3)
    run = Claim("run", timezone.now())
    ids = [reminder_id for reminder_id, _ in reminders._claim(run)]
    take = reminders._take
    failures = [OperationalError("couldn't get a connection after 3.00 sec")]

    def no_connection_once(*args, **kwargs):
        if failures:
            raise failures.pop()
        return take(*args, **kwargs)

    kwargs = {"reminder_ids": ids, "run_id": run.run_id, "claimed_at": run.at.isoformat()}
    with (
        mock.patch("scheduled.reminders._take", side_effect=no_connection_once),
        mock.patch("celery.app.task.Task.retry", wraps=run_job.retry) as retry,
    ):
        result = run_job.apply(args=["send_reminders"], kwargs=kwargs, task_id="chunk").get()

    assert retry.call_count == 1
    assert result == {"sent": 3}
    assert len(ses.recipients()) == len(tasks)
