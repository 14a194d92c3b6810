"""Static files (the local docs', the admin's), answering JSON for anything it cannot serve."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404


class StaticFiles(ASGIStaticFilesHandler):
    """Django's static files handler; a missing file, or a path that climbs out of the static
    folders (`/static/%2e%2e/...`), is the API's JSON 404, not a debug page or a 500."""

    def serve(self, request):
        try:
            return super().serve(request)
        except (Http404, SuspiciousFileOperation):
            from common.api.errors import not_found  # DRF's: this module loads before Django setup

            return not_found(request)
