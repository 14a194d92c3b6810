"""Liveness (/healthz, touches nothing) and readiness (/readyz, asks each dependency)."""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from common.infra.cache import cache_ping

logger = logging.getLogger(__name__)

# A dependency that has not answered within this is down, as far as a load balancer cares: the
# answer must come fast even when the pool is exhausted or a service hangs.
READY_TIMEOUT_SECONDS = 2.0


def _check_database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this check's thread ends here: hand its connection back


# name -> a check that raises when that dependency does not answer
READINESS_CHECKS: dict[str, Callable[[], None]] = {"database": _check_database, "cache": cache_ping}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = _run_checks(READINESS_CHECKS, timeout=READY_TIMEOUT_SECONDS)
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        return JsonResponse(
            {"status": "unavailable", "failed": failed, "checks": checks}, status=503
        )
    return JsonResponse({"status": "ok", "checks": checks})


def _run_checks(checks: dict[str, Callable[[], None]], *, timeout: float) -> dict[str, str]:
    """Every check at once, each in a thread of its own; one still running at `timeout` is down."""
    executor = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
    futures = {name: executor.submit(check) for name, check in checks.items()}
    wait(futures.values(), timeout=timeout)
    executor.shutdown(wait=False)  # a hung check finishes (or times out) on its own
    return {name: _state(name, future) for name, future in futures.items()}


def _state(name: str, future) -> str:
    if not future.done():
        logger.warning("readiness: %s did not answer within %ss", name, READY_TIMEOUT_SECONDS)
        return "down"
    try:
        future.result()
    except (DatabaseError, OSError, ConnectionError) as exc:
        logger.warning("readiness: %s is down: %s", name, exc)
        return "down"
    return "ok"
