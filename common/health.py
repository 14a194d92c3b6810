"""Liveness (/healthz, touches nothing) and readiness (/readyz, asks each dependency)."""

import logging
from collections.abc import Callable

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from common.cache import cache_ping

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


# name -> a check that raises when that dependency does not answer
READINESS_CHECKS: dict[str, Callable[[], None]] = {"database": _check_database, "cache": cache_ping}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except (DatabaseError, OSError, ConnectionError) as exc:
            logger.warning("readiness: %s is down: %s", name, exc)
            checks[name] = "down"
        else:
            checks[name] = "ok"
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        return JsonResponse(
            {"status": "unavailable", "failed": failed, "checks": checks}, status=503
        )
    return JsonResponse({"status": "ok", "checks": checks})
