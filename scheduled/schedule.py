"""When each job runs: the one table Celery Beat reads (and a cloud scheduler mirrors)."""

from datetime import timedelta

from celery.schedules import crontab, schedule

# job name -> when Beat runs it, and how long a queued run stays worth running (seconds)
SCHEDULE = {
    "send_due_reminders": {"schedule": schedule(timedelta(minutes=5)), "expires": 4 * 60},
    # 08:00 in TIME_ZONE (CELERY_TIMEZONE)
    "generate_project_summaries": {"schedule": crontab(hour=8, minute=0), "expires": 60 * 60},
    "prune_events": {"schedule": crontab(hour=3, minute=30), "expires": 60 * 60},
    "relay_webhooks": {"schedule": schedule(timedelta(seconds=10)), "expires": 9},
}


def beat_schedule() -> dict:
    """SCHEDULE as Celery's beat_schedule: every entry runs the one `run_job` task."""
    return {
        name: {
            "task": "scheduled.run_job",
            "schedule": entry["schedule"],
            "args": [name],
            "options": {"expires": entry["expires"]},
        }
        for name, entry in SCHEDULE.items()
    }
