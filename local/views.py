"""The local-only endpoints (CONTRACT section 4): the SES mock's outbox and running a job now.

They exist in local modes only: local.urls is served by the local run, never by a function.
No token needed: they show a developer's own machine to that developer.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from local import ses
from scheduled.celery import run_job
from scheduled.schedule import SCHEDULE


class LocalView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


# Neither is part of the API a deployment serves, so neither is in docs/openapi.yaml.
@extend_schema(exclude=True)
class OutboxView(LocalView):
    def get(self, request):
        return Response(ses.outbox())


@extend_schema(exclude=True)
class JobView(LocalView):
    def post(self, request, name: str):
        if name not in SCHEDULE:  # the scheduled jobs; their helpers are not entry points
            raise NotFound(f"No job named {name!r}. Jobs: {', '.join(sorted(SCHEDULE))}.")
        # The worker's own task, run in this request: what the job fans out goes to the worker.
        # apply() has already run it, so get() waits for nothing (Celery only guards by default).
        result = run_job.apply(args=[name]).get(disable_sync_subtasks=False)
        return Response({"job": name, "result": result})
