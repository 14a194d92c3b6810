"""Beat as a function: a scheduled event `{"job": NAME}` queues that job for the Celery workers.

AWS Lambda: `scheduled.dispatch.handler`, invoked by EventBridge Scheduler on the schedule Beat
keeps (deploy/aws/template.yaml is generated from scheduled.schedule). It sends what Beat sends,
the one `scheduled.run_job` task with the entry's `expires`, so a worker runs the job as it does
under compose: its time limits, its retries, and its fan-out of the summary emails.
(`scheduled.handler` instead runs a job inside the invocation, with no broker.)
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.infra.settings")
django.setup()

from scheduled.celery import app  # noqa: E402
from scheduled.schedule import SCHEDULE  # noqa: E402


def handler(event: dict, context: object) -> dict:
    name = event.get("job") if isinstance(event, dict) else None
    if name not in SCHEDULE:
        raise ValueError(f"a scheduled event names one of {sorted(SCHEDULE)}: got {event!r}")
    result = app.send_task(
        "scheduled.run_job",
        args=[name],
        expires=SCHEDULE[name]["expires"],
        queue=app.conf.task_default_queue,  # CELERY_QUEUE, where Beat sends them
    )
    return {"job": name, "task_id": result.id}
