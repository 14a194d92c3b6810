"""Beat through a broker outage: a real RabbitMQ behind a port that goes down and comes back."""

import time
import uuid
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from kombu import Connection
from kombu.utils.url import url_to_parts

from scheduled.beat import RetryingScheduler
from scheduled.celery import app as taskwire_app
from scheduled.tests.tcp import Forwarder

ENTRY = "generate_project_summaries"


class Queue:
    """A queue of the test's own on the real RabbitMQ, reached directly (not through the outage)."""

    def __init__(self, broker: Connection) -> None:
        self.name = f"test-beat-{uuid.uuid4().hex[:8]}"
        self._channel = broker.default_channel
        self._channel.queue_declare(queue=self.name, durable=True, auto_delete=False)

    def count(self) -> int:
        return self._channel.queue_declare(queue=self.name, passive=True).message_count

    def delete(self) -> None:
        self._channel.queue_delete(self.name)


@pytest.fixture
def queue():
    with Connection(settings.CELERY_BROKER_URL) as broker:
        queue = Queue(broker)
        yield queue
        queue.delete()


def beat_through(port: int, queue_name: str, schedule_file) -> RetryingScheduler:
    parts = url_to_parts(settings.CELERY_BROKER_URL)
    url = f"amqp://{parts.username}:{parts.password}@127.0.0.1:{port}//"
    app = Celery("beat-test", set_as_current=False)
    # What Beat connects to (the CELERY_BROKER_URL variable would win over broker_url).
    app.conf.broker_write_url = url
    app.conf.beat_schedule = {
        ENTRY: {
            "task": "scheduled.run_job",
            "schedule": timedelta(hours=1),
            "args": [ENTRY],
            "options": {"queue": queue_name},
        }
    }
    scheduler = RetryingScheduler(app=app, schedule_filename=str(schedule_file))
    scheduler.retry_seconds = 0.1
    scheduler.schedule[ENTRY].last_run_at -= timedelta(hours=2)  # due now
    return scheduler


def test_the_production_beat_command_uses_the_retrying_scheduler():
    assert taskwire_app.conf.beat_scheduler == "scheduled.beat:RetryingScheduler"


def test_a_run_due_while_the_broker_is_down_is_sent_once_it_answers(queue, tmp_path):
    rabbitmq = url_to_parts(settings.CELERY_BROKER_URL).port or 5672
    broker = Forwarder(rabbitmq)
    scheduler = beat_through(broker.port, queue.name, tmp_path / "schedule")
    scheduler.producer  # noqa: B018 (Beat connected before the outage, as a running one is)
    broker.close()

    scheduler.tick()  # due now, and the broker refuses: Celery's own Beat skips the run here
    assert queue.count() == 0
    broker = Forwarder(rabbitmq, port=broker.port)  # the broker is back
    try:
        deadline = time.monotonic() + 30
        while queue.count() == 0 and time.monotonic() < deadline:
            time.sleep(min(scheduler.tick(), 0.5))
        assert queue.count() == 1
        assert scheduler.schedule[ENTRY].total_run_count == 1  # sent, and moved on to the next
        scheduler.tick()
        assert queue.count() == 1  # once: the entry's next run is in an hour
    finally:
        broker.close()
        scheduler.close()
