"""Sending one email through the configured backend (Amazon SES in production).

Every attempt first takes its turn from the fleet's send rate (scheduled.send_rate), so the
workers together keep to the SES account's rate. Transient SES errors are retried here, each of
them meaning SES did not take the message: `Throttling` after the bucket's next slot (the shared
bucket says when), 5xx and no connection with exponential backoff and full jitter. botocore
retries nothing itself (SESBackend below), so no send is repeated behind this module's back. A
send whose outcome is unknown (a read timeout, a connection closed mid-answer) is not retried
here: it is raised as EmailUncertain, for the caller, who knows how often it has happened, to
decide. A message that cannot be built (a malformed address) or that SES refuses for good is
raised as EmailRejected.
"""

import importlib.util
import logging
import random
import sys
import threading
import time
from typing import Any

import django_ses
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from scheduled.send_rate import send_rate

logger = logging.getLogger(__name__)

ATTEMPTS = 4
MAX_THREADS = 32  # sending threads of one process that each keep an SES connection
BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
_THROTTLING_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException"}
_TRANSIENT_CODES = {
    *_THROTTLING_CODES,
    "ServiceUnavailable",
    "InternalFailure",
    "RequestTimeout",
}


class SESBackend(django_ses.SESBackend):
    """django-ses (EMAIL_BACKEND), its botocore client with explicit timeouts and no retries.

    botocore's retry modes also retry a read timeout, which for a send is a second email: this
    module retries only what SES cannot have taken. Nor does botocore validate the parameters
    of each call against SES's model (about 0.05 ms of CPU per email): django-ses builds them,
    always the same three, and SES itself refuses a bad one.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "aws_config",
            Config(
                connect_timeout=settings.SES_CONNECT_TIMEOUT,
                read_timeout=settings.SES_READ_TIMEOUT,
                retries={"mode": "standard", "total_max_attempts": 1},
                parameter_validation=False,
                # Shared by a worker's threads: a connection each (beyond the pool's size,
                # each send would open and drop one).
                max_pool_connections=MAX_THREADS,
            ),
        )
        super().__init__(**kwargs)


def _remember_no_dkim() -> None:
    """django-ses imports `dkim` on every send, to sign when DKIM is configured; without the
    package installed, each send searched sys.path for it again (about 0.06 ms of CPU, a failed
    import is not cached). Python's own marker for a module known missing, None in sys.modules,
    makes that import fail at once, as before: with the package installed nothing changes."""
    if "dkim" not in sys.modules and importlib.util.find_spec("dkim") is None:
        sys.modules["dkim"] = None  # type: ignore[assignment]


_remember_no_dkim()


class _BuiltOnce(EmailMessage):
    """An EmailMessage whose MIME message is built once: send_email builds it first (a bad
    address fails before anything is sent), and django-ses's send builds it again for its bytes
    (about a tenth of a worker's CPU per email). Nothing changes the message in between: the
    only header django-ses adds, its configuration set's, is not configured here."""

    _built = None

    def message(self, *args, **kwargs):
        if self._built is None:
            self._built = super().message(*args, **kwargs)
        return self._built


class EmailRejected(Exception):
    """SES refused the message for good; sending it again would fail the same way."""


class EmailUnavailable(Exception):
    """SES kept failing transiently; a later run should try again."""


class EmailUncertain(Exception):
    """The request went out but no answer came back: SES may or may not have sent it."""


# One email backend per process, its SES client shared by every thread: a botocore client is
# thread-safe, and making one costs about 80 ms of CPU (a worker of 4 threads made 4, and one
# more to read the quota; on a loaded machine each cost up to 0.3 s).
_shared: tuple[tuple[str, str], Any] | None = None
_shared_lock = threading.Lock()


def shared_backend():
    """This process's email backend, opened once and kept: one SES client for every thread and
    every send, never one per send or per job. A change of EMAIL_BACKEND or of SES's endpoint
    (tests) makes a new one."""
    global _shared
    key = (settings.EMAIL_BACKEND, getattr(settings, "AWS_SES_REGION_ENDPOINT_URL", ""))
    kept = _shared
    if kept is None or kept[0] != key:
        with _shared_lock:
            kept = _shared
            if kept is None or kept[0] != key:
                backend = get_connection()
                backend.open()
                _shared = kept = (key, backend)
    return kept[1]


def forget_backends() -> None:
    """Drop the kept backend (tests: a client made inside one SES mock, not another)."""
    global _shared
    with _shared_lock:
        _shared = None


def send_email(*, to: str, subject: str, body: str, connection=None) -> str:
    """Send one message; return SES's message id ("" from backends that have none).

    `connection`: an open email backend to send through (one SES client for many messages);
    by default a new one for this message.
    """
    message = _BuiltOnce(
        subject_line(subject), body, settings.DEFAULT_FROM_EMAIL, [to], connection=connection
    )
    try:
        message.message()  # built here, so a bad address fails before anything is sent
    except ValueError as exc:  # BadHeaderError among them
        raise EmailRejected(f"message could not be built: {exc}") from exc
    limiter = send_rate()
    for attempt in range(ATTEMPTS):
        limiter.take()  # this attempt's turn at the fleet's rate
        try:
            message.send()
            return message.extra_headers.get("message_id", "")
        except ClientError as exc:
            if not _is_transient(exc):
                raise EmailRejected(_describe(exc)) from exc
            error: Exception = exc
        except BotoConnectionError as exc:  # no connection: nothing reached SES
            error = exc
        except HTTPClientError as exc:  # sent, and then no (whole) answer
            raise EmailUncertain(str(exc)) from exc
        logger.warning("email to %s failed (attempt %d), retrying: %s", to, attempt + 1, error)
        if attempt + 1 < ATTEMPTS and not _is_throttling(error):
            time.sleep(_backoff(attempt))  # throttled: the next take() waits for the bucket
    raise EmailUnavailable(str(error))


def subject_line(text: str) -> str:
    """`text` on one line: a line break in a header would be refused (or, raw, inject one)."""
    return " ".join(text.split())


def _is_transient(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in _TRANSIENT_CODES or status >= 500


def _is_throttling(exc: Exception) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code", "") in (
        _THROTTLING_CODES
    )


def _describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}"


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2**attempt))  # noqa: S311 (backoff jitter, not a secret)
