"""The static files of the local run's API docs, answering JSON for anything it cannot serve."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404

from common.errors import not_found


class StaticFiles(ASGIStaticFilesHandler):
    """Django's static files handler; a missing file, or a path that climbs out of the static
    folders (`/static/%2e%2e/...`), is the API's JSON 404, not a debug page or a 500."""

    def serve(self, request):
        try:
            return super().serve(request)
        except (Http404, SuspiciousFileOperation):
            return not_found(request)
