"""send_due_reminders: one email per task and due date, for open tasks due within 24 hours.

Exactly once, with any number of runs and workers: a Reminder row per (task, due date) is
created once (a unique constraint), claimed by one run (row locks, SKIP LOCKED), and sent under
its row lock, which a concurrent run waits for and then finds sent. A worker that dies between
claim and send leaves a claim that a later run takes over once the lease has passed. The one gap
no database closes: SES accepting a message and the worker dying before its commit, in which
case the next run sends it again.
"""

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common.cache import cache_version_bump
from common.models import Reminder, Task
from scheduled.email import EmailRejected, EmailUnavailable, send_email

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
LEASE = timedelta(minutes=10)  # longer than a job may run (CELERY_TASK_TIME_LIMIT)


def send_due_reminders(*, now: datetime | None = None) -> dict[str, int]:
    """Remind the assignee (else the project owner) of each task due soon; count outcomes."""
    now = now or timezone.now()
    claimed = _claim(now)
    outcomes = Counter(_deliver(reminder_id, claimed_at=now) for reminder_id in claimed)
    return {"claimed": len(claimed), **outcomes}


# The due window, over common_task; served by the partial index task_reminder_due_idx.
_DUE = (
    "t.due_date > %(now)s AND t.due_date <= %(end)s"
    " AND t.reminder_sent_at IS NULL AND t.status <> 'completed'"
)
_CREATE_DUE = f"""
    INSERT INTO common_reminder
        (task_id, due_date, status, claimed_at, sent_at, recipient, message_id, error, created_at)
    SELECT t.id, t.due_date, 'pending', NULL, NULL, '', '', '', %(now)s FROM common_task t
    WHERE {_DUE}
    ON CONFLICT (task_id, due_date) DO NOTHING
"""
_CLAIM = f"""
    UPDATE common_reminder SET claimed_at = %(now)s WHERE id IN (
        SELECT r.id FROM common_reminder r JOIN common_task t ON t.id = r.task_id
        WHERE r.status = 'pending' AND (r.claimed_at IS NULL OR r.claimed_at < %(lease)s)
            AND r.due_date = t.due_date AND {_DUE}
        {{lock}}
    )
    RETURNING id
"""


def _claim(now: datetime) -> list[int]:
    """Create the reminders now due and claim those nobody holds; return their ids.

    Two statements, whatever the number of tasks: the rows never pass through Python.
    """
    moments = {"now": now, "end": now + WINDOW, "lease": now - LEASE}
    params = {
        name: connection.ops.adapt_datetimefield_value(value) for name, value in moments.items()
    }
    # Rows another run is claiming right now are skipped, not waited for (PostgreSQL).
    lock = "FOR UPDATE OF r SKIP LOCKED" if connection.features.has_select_for_update_of else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CREATE_DUE, params)
        cursor.execute(_CLAIM.format(lock=lock), params)
        return sorted(row[0] for row in cursor.fetchall())


def _deliver(reminder_id: int, *, claimed_at: datetime) -> str:
    with transaction.atomic():
        reminder = (
            Reminder.objects.select_for_update(of=("self",))
            .select_related("task__project__owner", "task__assignee")
            .filter(id=reminder_id, status=Reminder.Status.PENDING, claimed_at=claimed_at)
            .first()
        )
        if reminder is None:
            return "taken"  # another run finished it, or took over our claim
        return _send(reminder)


def _send(reminder: Reminder) -> str:
    task = reminder.task
    recipient = _recipient(task)
    if not recipient:
        logger.warning("reminder for task %s skipped: no assignee or owner email", task.id)
        return _finish(reminder, Reminder.Status.SKIPPED)
    subject, body = _message(task)
    try:
        reminder.message_id = send_email(to=recipient, subject=subject, body=body)
    except EmailRejected as exc:
        logger.error("reminder for task %s to %s rejected: %s", task.id, recipient, exc)
        reminder.recipient, reminder.error = recipient, str(exc)
        return _finish(reminder, Reminder.Status.FAILED)
    except EmailUnavailable as exc:
        logger.warning("reminder for task %s not sent yet, a later run retries: %s", task.id, exc)
        reminder.claimed_at = None
        reminder.save(update_fields=["claimed_at"])
        return "retry"
    reminder.recipient, reminder.sent_at = recipient, timezone.now()
    Task.objects.filter(pk=task.pk, due_date=reminder.due_date).update(
        reminder_sent_at=reminder.sent_at
    )
    cache_version_bump("tasks", f"tasks:project:{task.project_id}")  # update() sends no signal
    return _finish(reminder, Reminder.Status.SENT)


def _finish(reminder: Reminder, status: str) -> str:
    reminder.status = status
    reminder.save(
        update_fields=["status", "recipient", "sent_at", "message_id", "error", "claimed_at"]
    )
    return str(status)  # the value, not the enum member


def _recipient(task: Task) -> str:
    for user in (task.assignee, task.project.owner):
        if user is not None and user.email:
            return user.email
    return ""


def _message(task: Task) -> tuple[str, str]:
    due = timezone.localtime(task.due_date).strftime(f"%a %d %b %Y, %H:%M ({settings.TIME_ZONE})")
    subject = f"Reminder: '{task.title}' is due {due}"
    body = (
        f"Task #{task.id}, '{task.title}', in project '{task.project.name}', is due {due}.\n"
        f"Status: {task.get_status_display()}.\n\n"
        f"{task.description}".rstrip()
        + "\n"
    )
    return subject, body
