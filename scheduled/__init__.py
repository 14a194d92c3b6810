"""The scheduled jobs: the Celery app (scheduled.celery), the Beat schedule and the jobs."""
