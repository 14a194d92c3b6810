"""Whether the broker answers: /readyz of the processes that use it, and `scheduled.ready`."""

from django.conf import settings
from kombu import Connection

TIMEOUT_SECONDS = 2.0


def broker_ping() -> None:
    """Raise ConnectionError unless the broker (CELERY_BROKER_URL) takes a connection now."""
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=TIMEOUT_SECONDS) as connection:
        try:
            # One attempt: readiness is a question about now, not a wait for the broker.
            connection.ensure_connection(max_retries=0, reraise_as_library_errors=False)
        except connection.connection_errors as exc:
            raise ConnectionError(f"broker: {exc!r}") from exc


def broker_readiness_register() -> None:
    """Make this process's /readyz ask the broker too (a process that uses it calls this)."""
    from common.api.health import READINESS_CHECKS

    READINESS_CHECKS["broker"] = broker_ping
