"""Request guards that run around every view: JSON errors, a busy database.

The request-size limit is in front of Django, in common.infra.asgi.
"""

import logging
from collections.abc import Callable

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

# How long a client is told to wait when the database cannot serve it right now.
DATABASE_BUSY_RETRY_AFTER_SECONDS = 2
# Headers of an error answer that say something to the client and survive its JSON rewrite.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class JSONErrorMiddleware:
    """Every error answers JSON, in every run mode.

    Django's own error answers (DEBUG's HTML 404 page for a path no route matches, the 400 of a
    disallowed host, a plain view's 405) become `{"detail": <reason>}` with the same status.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        detail = (
            response.reason_phrase.capitalize() + "."
        )  # "Not found.", as common.api.errors says
        replacement = JsonResponse({"detail": detail}, status=response.status_code)
        for header in _KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement


class DatabaseBusyMiddleware:
    """A database that cannot serve the request in time answers 503 with Retry-After, not 500.

    That is no connection free in the pool within its timeout, a lock not granted within
    lock_timeout, a statement cut at statement_timeout (infra.settings), or the database down:
    each is an OperationalError, and each is worth retrying shortly.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError):
            return None
        logger.warning(
            "database busy or unavailable for %s %s: %s", request.method, request.path, exception
        )
        return database_busy_response()


def database_busy_response() -> JsonResponse:
    response = JsonResponse(
        {"detail": "The database is busy or unavailable; retry shortly."}, status=503
    )
    response["Retry-After"] = str(DATABASE_BUSY_RETRY_AFTER_SECONDS)
    return response
