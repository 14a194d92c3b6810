"""The scheduled jobs: the Celery app, the Beat schedule and the jobs (built in the jobs issue)."""
