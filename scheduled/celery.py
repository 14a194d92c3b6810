"""The Celery app: `celery -A scheduled.celery worker` and `celery -A scheduled.celery beat`.

Settings come from Django's (the CELERY_ ones); Beat reads scheduled.schedule; every scheduled
entry runs the one task below, which runs a job by name. Webhook deliveries have a task of their
own, queued after each write's commit (scheduled.webhooks).
"""

import os

from celery import Celery
from django.db import DatabaseError

from scheduled.schedule import beat_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.infra.settings")

app = Celery("taskwire")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = beat_schedule()
# A run Beat could not queue (the broker down) stays due, and is sent when the broker answers.
app.conf.beat_scheduler = "scheduled.beat:RetryingScheduler"


# A job the database failed (no pooled connection in time, a lock or statement timeout) is run
# again after a backoff, under the same task id: jobs are idempotent, and a reminder run or
# chunk takes its own claim back at once instead of leaving it to the lease.
@app.task(
    name="scheduled.run_job",
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def run_job(name: str, **params) -> dict:
    """Run a job by name (a job, not a Task: the domain already has tasks)."""
    from scheduled.jobs import run_job as run

    return run(name, **params)


# Likewise a webhook message the database failed (a connection PostgreSQL dropped, which the
# pool replaces once it is handed back): made again at once or within a second or two, under
# the same task id, so its claim is its own, instead of waiting minutes for the relay.
@app.task(
    name="scheduled.deliver_webhooks",
    bind=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=5,
)
def deliver_webhooks(self, delivery_ids: list[int]) -> dict:
    """Make the webhook delivery attempts `delivery_ids` (scheduled.webhooks). The claim is this
    task's id, the same when a dead worker's message is redelivered or the task is retried."""
    from scheduled.webhooks import deliver

    return deliver(delivery_ids, claim=self.request.id or "")
