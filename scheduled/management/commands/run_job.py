"""`manage.py run_job NAME`: run a job now, on the same code path as Beat."""

import json

from django.core.management.base import BaseCommand, CommandError

from scheduled.jobs import JOBS, UnknownJob, run_job


class Command(BaseCommand):
    help = f"Run a scheduled job now. Jobs: {', '.join(sorted(JOBS))}."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="the job's name")

    def handle(self, *args, name: str, **options) -> None:
        try:
            result = run_job(name)
        except UnknownJob as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"job": name, "result": result}))
