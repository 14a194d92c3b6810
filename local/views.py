"""The local-only endpoints (CONTRACT section 4): the SES mock's outbox and running a job now.

They exist in local modes only: local.urls is served by the local run, never by a function.
No token needed: they show a developer's own machine to that developer, and only to them: the
Host must be one of ALLOWED_HOSTS (a page on another site that rebinds its DNS name to this
machine is refused), and a POST from another site's page is refused.
"""

from urllib.parse import urlsplit

from django.core.exceptions import DisallowedHost
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from local import ses
from scheduled.celery import run_job
from scheduled.schedule import SCHEDULE


class LocalView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        try:
            host = request.get_host()
        except DisallowedHost as exc:
            raise ParseError("The Host header is not one of ALLOWED_HOSTS.") from exc
        if request.method not in ("GET", "HEAD", "OPTIONS") and _cross_site(request, host):
            raise PermissionDenied("Cross-origin requests to /local/ are refused.")


def _cross_site(request, host: str) -> bool:
    """Whether a browser says this request comes from a page of another origin."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc != host


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
