"""send_due_reminders: one email per task and due date, for open tasks due within 24 hours.

Exactly once, with any number of runs and workers: a Reminder row per (task, due date) is
created once (a unique constraint) and claimed by one run (row locks, SKIP LOCKED, a lease).
The run sends its claim in chunks: it locks a chunk's rows, sends each email, and records the
whole chunk (statuses, SES message ids, the tasks' reminder_sent_at) in one commit, so the
database work per chunk does not grow with it. A concurrent run that takes over an expired claim
waits for those row locks and then finds the chunk sent. A worker that dies between claim and
send leaves a claim that a later run takes over once the lease has passed.

The gap no database closes: SES accepting a message and the worker dying (killed, or its
database connection lost) before the chunk's commit. The emails of that chunk that SES already
accepted, at most SEND_CHUNK of them, are then sent again by a run after the lease. Any other
error in the middle of a chunk first records what was sent, then is raised.
"""

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import get_connection
from django.db import connection, transaction
from django.utils import timezone

from common.cache import cache_version_bump
from common.models import Reminder, Task
from scheduled.email import EmailRejected, EmailUnavailable, send_email

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
LEASE = timedelta(minutes=10)  # longer than a job may run (CELERY_TASK_TIME_LIMIT)
SEND_CHUNK = 100  # reminders sent per commit: at most this many go out twice after a crash


def send_due_reminders(*, now: datetime | None = None) -> dict[str, int]:
    """Remind the assignee (else the project owner) of each task due soon; count outcomes."""
    now = now or timezone.now()
    claimed = _claim(now)
    outcomes: Counter[str] = Counter()
    with get_connection() as email_backend:  # one SES client for the run, not one per email
        for start in range(0, len(claimed), SEND_CHUNK):
            chunk = claimed[start : start + SEND_CHUNK]
            outcomes += _deliver(chunk, claimed_at=now, email_backend=email_backend)
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


def _deliver(ids: list[int], *, claimed_at: datetime, email_backend) -> Counter[str]:
    """Send one chunk of our claim under its row locks; record it in one commit."""
    with transaction.atomic():
        reminders = list(
            Reminder.objects.select_for_update(of=("self",))
            .select_related("task__project__owner", "task__assignee")
            .filter(id__in=ids, status=Reminder.Status.PENDING, claimed_at=claimed_at)
            .order_by("id")
        )
        # The rest: another run finished them, or took over our claim.
        outcomes = Counter(
            {"taken": len(ids) - len(reminders)} if len(reminders) < len(ids) else {}
        )
        done: list[Reminder] = []
        error = None
        for reminder in reminders:
            try:
                outcomes[_send(reminder, email_backend)] += 1
            except Exception as exc:  # recorded below with what was sent before it, then raised
                error = exc
                break
            done.append(reminder)
        _record(done)
    if error is not None:
        raise error
    return outcomes


def _send(reminder: Reminder, email_backend) -> str:
    """Send one reminder; set its outcome on it (recorded by _record)."""
    task = reminder.task
    recipient = _recipient(task)
    if not recipient:
        logger.warning("reminder for task %s skipped: no assignee or owner email", task.id)
        reminder.status = Reminder.Status.SKIPPED
        return str(reminder.status)  # the value, not the enum member
    subject, body = _message(task)
    try:
        reminder.message_id = send_email(
            to=recipient, subject=subject, body=body, connection=email_backend
        )
    except EmailRejected as exc:
        logger.error("reminder for task %s to %s rejected: %s", task.id, recipient, exc)
        reminder.recipient, reminder.error = recipient, str(exc)
        reminder.status = Reminder.Status.FAILED
        return str(reminder.status)
    except EmailUnavailable as exc:
        logger.warning("reminder for task %s not sent yet, a later run retries: %s", task.id, exc)
        reminder.claimed_at = None  # still pending: the next run claims it again
        return "retry"
    reminder.recipient, reminder.sent_at = recipient, timezone.now()
    reminder.status = Reminder.Status.SENT
    return str(reminder.status)


_RECORD_REMINDER = (
    "UPDATE common_reminder SET status = %s, recipient = %s, sent_at = %s, message_id = %s,"
    " error = %s, claimed_at = %s WHERE id = %s"
)
# The tasks of the chunk's sent reminders, from the rows just recorded. A task whose due date
# changed since the claim was re-armed: it keeps reminder_sent_at NULL.
_RECORD_TASKS = """
    UPDATE common_task SET reminder_sent_at = r.sent_at FROM common_reminder r
    WHERE r.id IN ({ids}) AND r.status = 'sent'
        AND r.task_id = common_task.id AND r.due_date = common_task.due_date
"""


def _record(reminders: list[Reminder]) -> None:
    """Write the chunk's outcomes: the reminders in one executemany (one round trip on
    PostgreSQL, where psycopg pipelines it), their tasks in one UPDATE, and one cache version
    bump for their projects."""
    if not reminders:
        return
    adapt = connection.ops.adapt_datetimefield_value
    sent = [r for r in reminders if r.status == Reminder.Status.SENT]
    with connection.cursor() as cursor:
        cursor.executemany(
            _RECORD_REMINDER,
            [
                (
                    r.status,
                    r.recipient,
                    adapt(r.sent_at),
                    r.message_id,
                    r.error,
                    adapt(r.claimed_at),
                    r.id,
                )
                for r in reminders
            ],
        )
        if sent:
            ids = [r.id for r in sent]
            cursor.execute(_RECORD_TASKS.format(ids=", ".join(["%s"] * len(ids))), ids)
    if sent:  # update() sends no signal: the task lists showing reminder_sent_at
        projects = sorted({r.task.project_id for r in sent})
        cache_version_bump("tasks", *(f"tasks:project:{project}" for project in projects))


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
