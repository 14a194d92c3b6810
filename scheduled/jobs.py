"""The jobs: plain functions in one registry. Beat (scheduled.schedule), `manage.py run_job`
and the Lambda scheduled handler all run a job through `run_job(name)`.

Every job is idempotent: running it twice, or on two workers at once, does the work once.
"""

import logging
from collections.abc import Callable
from typing import Any

from common.domain.events import event_prune
from scheduled.reminders import send_due_reminders, send_reminders
from scheduled.summaries import email_summaries, generate_project_summaries
from scheduled.webhooks import relay

logger = logging.getLogger(__name__)


def prune_events() -> dict[str, int]:
    """The daily clean-up of what the log and the tokens leave behind: events past retention
    (with their finished deliveries), and the refresh tokens recorded at each login and refresh
    (simplejwt's blacklist, as its `flushexpiredtokens` does) once they have expired."""
    from django.utils import timezone
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    expired = OutstandingToken.objects.filter(expires_at__lte=timezone.now())
    _, deleted = expired.delete()  # with their blacklist entries
    tokens = deleted.get(OutstandingToken._meta.label, 0)
    return {"pruned": event_prune(), "tokens_flushed": tokens}


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "send_due_reminders": send_due_reminders,
    "send_reminders": send_reminders,  # a chunk of send_due_reminders' claim
    "generate_project_summaries": generate_project_summaries,
    "email_summaries": email_summaries,  # a share of generate_project_summaries' emails
    "prune_events": prune_events,
    "relay_webhooks": relay,  # webhook deliveries that never reached a worker
}


class UnknownJob(LookupError):
    pass


def run_job(name: str, **params: Any) -> dict[str, Any]:
    """Run the job called `name` now; return what it did."""
    try:
        job = JOBS[name]
    except KeyError:
        raise UnknownJob(f"no job {name!r}; known: {', '.join(sorted(JOBS))}") from None
    result = job(**params)
    logger.info("job %s: %s", name, result)
    return result
