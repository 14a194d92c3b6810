"""The jobs on a function platform: a scheduled event `{"job": NAME}` runs that job.

AWS Lambda: `scheduled.handler.handler`, triggered by EventBridge Scheduler with that payload.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.infra.settings")
django.setup()

from scheduled.jobs import run_job  # noqa: E402


def handler(event: dict, context: object) -> dict:
    name = event.get("job") if isinstance(event, dict) else None
    if not isinstance(name, str):
        raise ValueError('a scheduled event must look like {"job": "send_due_reminders"}')
    return {"job": name, "result": run_job(name)}
