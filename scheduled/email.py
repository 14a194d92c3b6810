"""Sending one email through the configured backend (Amazon SES in production).

Transient SES errors (throttling, 5xx, a dropped connection) are retried here with exponential
backoff and full jitter; a rejection SES will repeat (a bad address, an unverified sender) is
raised as EmailRejected for the caller to record.
"""

import logging
import random
import time

from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings
from django.core.mail import EmailMessage

logger = logging.getLogger(__name__)

ATTEMPTS = 4
BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalFailure",
    "RequestTimeout",
}


class EmailRejected(Exception):
    """SES refused the message for good; sending it again would fail the same way."""


class EmailUnavailable(Exception):
    """SES kept failing transiently; a later run should try again."""


def send_email(*, to: str, subject: str, body: str, connection=None) -> str:
    """Send one message; return SES's message id ("" from backends that have none).

    `connection`: an open email backend to send through (one SES client for many messages);
    by default a new one for this message.
    """
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to], connection=connection)
    for attempt in range(ATTEMPTS):
        try:
            message.send()
            return message.extra_headers.get("message_id", "")
        except ClientError as exc:
            if not _is_transient(exc):
                raise EmailRejected(_describe(exc)) from exc
            error: Exception = exc
        except BotoConnectionError as exc:
            error = exc
        logger.warning("email to %s failed (attempt %d), retrying: %s", to, attempt + 1, error)
        if attempt + 1 < ATTEMPTS:
            time.sleep(_backoff(attempt))
    raise EmailUnavailable(str(error))


def _is_transient(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in _TRANSIENT_CODES or status >= 500


def _describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}"


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2**attempt))
