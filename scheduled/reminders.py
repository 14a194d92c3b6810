"""send_due_reminders: one email per task and due date, for open tasks due within 24 hours.

Exactly once, with any number of runs and workers: a Reminder row per (task, due date) is
created once (a unique constraint) and claimed by one run (row locks, SKIP LOCKED, a lease).
Each email is sent under its reminder's row lock, from the task as it is then, and recorded in
its own commit, so a sent reminder is on disk before the next email goes: a concurrent run that
takes over an expired claim waits for the lock and then finds it sent, and a worker that dies
between claim and send leaves a claim that a later run takes over once the lease has passed.
A run stops sending well before Celery's time limit would interrupt a send, and releases what
it has not sent to the next run.

On a worker the claim fans out: the run (one set-based claim, as many reminders as the send
rate lets go out before the next run) hands its reminders to `send_reminders` jobs of CHUNK,
which every worker takes a share of, and all of them keep to one send rate
(scheduled.send_rate). A chunk job first takes its reminders over from the run's claim, in one
statement and under a claim of its own (its Celery task id, stamped now: its lease runs from
its start), then sends them one by one in id order as a run does. Run by hand (manage.py,
Lambda, the local run) the run sends its chunks itself.

A claim names its holder (a Celery task id, which a redelivered message keeps): a run or chunk
redelivered after its worker died takes its own claim back at once instead of waiting for the
lease. Its reminders are sent in id order, each committed before the next, so of those it still
holds only the lowest can have been in flight when it died: that one alone counts as an
uncertain send.

The one gap no database closes: SES accepting a message and the worker dying before that
reminder's commit, or SES never answering. Such a send counts as uncertain; one more is made
(on record before it goes), and after a second the reminder is failed: never a third email.
"""

import hashlib
import logging
import re
import time
import uuid
import weakref
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from psycopg.types.numeric import Int4

from common.domain.models import Project, Reminder, Task
from common.domain.reminders import WINDOW as WINDOW  # the bench reads it here
from common.domain.reminders import reminder_due, reminder_recipient
from common.domain.services import task_mark_reminded
from scheduled.email import (
    EmailRejected,
    EmailUnavailable,
    EmailUncertain,
    send_email,
    shared_backend,
)
from scheduled.schedule import SCHEDULE
from scheduled.send_rate import send_rate

logger = logging.getLogger(__name__)
User = get_user_model()

LEASE = timedelta(minutes=10)  # longer than a job may run (CELERY_TASK_TIME_LIMIT)
MAX_UNCERTAIN_SENDS = 2  # the email itself and its one possible duplicate
CHUNK = 50  # reminders per send_reminders job: small, so the workers' shares even out
RECORD_ATTEMPTS = 5  # an outcome SES gave whose commit failed (a lock timeout) is retried
RECORD_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class Claim:
    """Which run (or chunk job) holds a reminder, and since when (its `now`)."""

    run_id: str
    at: datetime


def send_due_reminders(*, now: datetime | None = None, run_id: str = "") -> dict[str, int]:
    """Remind the assignee (else the project owner) of each task due soon; count outcomes.

    `run_id`: this run's id; by default the Celery task's (stable across a redelivery), else new.
    On a worker the claimed reminders go out as `send_reminders` jobs (counted as "chunks");
    otherwise this run sends them and counts their outcomes.
    """
    claim = Claim(run_id=run_id or _current_run_id(), at=now or timezone.now())
    claimed = _claim(claim, limit=_claim_limit())
    chunks = [claimed[i : i + CHUNK] for i in range(0, len(claimed), CHUNK)]
    task = _worker_task()
    if task is not None:
        for chunk in chunks:
            kwargs = {"reminder_ids": [reminder_id for reminder_id, _ in chunk]}
            kwargs |= {"run_id": claim.run_id, "claimed_at": claim.at.isoformat()}
            task.app.send_task("scheduled.run_job", args=["send_reminders"], kwargs=kwargs)
        return {"claimed": len(claimed), "chunks": len(chunks)}
    return {"claimed": len(claimed), **_deliver_all(claimed, claim)}


def send_reminders(*, reminder_ids: list[int], run_id: str, claimed_at: str) -> dict[str, int]:
    """A chunk job: take these reminders over from run `run_id`'s claim and send them."""
    run = Claim(run_id=run_id, at=datetime.fromisoformat(claimed_at))
    chunk = Claim(run_id=_current_run_id(), at=timezone.now())
    taken = _take(reminder_ids, run=run, chunk=chunk)
    outcomes = _deliver_all(taken, chunk)
    if len(taken) < len(reminder_ids):
        outcomes["taken"] = outcomes.get("taken", 0) + len(reminder_ids) - len(taken)
    return outcomes


def _deliver_all(claimed: list[tuple[int, int]], claim: Claim) -> dict[str, int]:
    """Send each reminder of the claim in turn, in id order; count the outcomes."""
    # Half the soft time limit: a send that has started (retries, a slow SES) has time to end.
    deadline = time.monotonic() + settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    outcomes: Counter[str] = Counter()
    email_backend = shared_backend()  # the process's one SES client
    for index, (reminder_id, uncertain) in enumerate(claimed):
        if time.monotonic() >= deadline:
            ids = [reminder_id for reminder_id, _ in claimed[index:]]
            outcomes["deferred"] = _release(ids, claim=claim)
            break
        outcome = _spend_resend(reminder_id, claim=claim) if uncertain else None
        outcome = outcome or _deliver(
            reminder_id, claim=claim, resend=bool(uncertain), email_backend=email_backend
        )
        outcomes[outcome] += 1
    return dict(outcomes)


def _worker_task():
    """The Celery task this runs in on a worker (not eagerly, not by hand), else None."""
    from celery import current_task

    if current_task and current_task.request.id and not current_task.request.is_eager:
        return current_task
    return None


def _claim_limit() -> int | None:
    """As many reminders as the send rate lets go out before the next run (None: unpaced)."""
    from scheduled.send_rate import _paced

    if not _paced():
        return None
    period = SCHEDULE["send_due_reminders"]["schedule"].run_every.total_seconds()
    return max(CHUNK, int(send_rate().rate() * period))


def _current_run_id() -> str:
    from celery import current_task

    if current_task and current_task.request.id:
        return current_task.request.id
    return uuid.uuid4().hex  # by hand (run_job, Lambda): a run of its own


def _create_due(now: datetime) -> tuple[str, list]:
    """A pending reminder for each task now due one (common.domain.reminders), unless it has one."""
    due = Task.objects.filter(reminder_due(now)).values("id", "due_date")
    due_sql, due_params = due.query.sql_with_params()
    # Values are parameters; only Django's own SQL and table names go into the text.
    sql = f"""
        INSERT INTO {_table(Reminder)}
            (task_id, due_date, status, claimed_at, claimed_by, uncertain_sends, sent_at,
             recipient, message_id, error, created_at)
        SELECT due.id, due.due_date, %s, NULL, '', 0, NULL, '', '', '', %s FROM ({due_sql}) due
        WHERE true  -- SQLite's parser needs a WHERE before an upsert's ON CONFLICT
        ON CONFLICT (task_id, due_date) DO NOTHING
    """  # noqa: S608 (the text is Django's compiled SQL and the models' table names)
    return sql, [Reminder.Status.PENDING.value, _adapt(now), *due_params]


def _claim_free(claim: Claim, limit: int | None = None) -> tuple[str, list]:
    """Claim the pending reminders of tasks still due one that nobody holds (or we held).

    Taking over a claim nobody released (its worker died, maybe mid-send) counts as an
    uncertain send; a released one (deferred, retried, not due) was not being sent.
    """
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=claim.at - LEASE)
    claimable = Reminder.objects.filter(
        free | Q(claimed_by=claim.run_id),
        reminder_due(claim.at, via="task__"),
        status=Reminder.Status.PENDING,
        due_date=F("task__due_date"),  # a re-dated task's old reminder stays unclaimed
    ).values("id")
    if limit is not None:  # the soonest due first
        claimable = claimable.order_by("due_date", "id")[:limit]
    if connection.features.has_select_for_update_of:
        # Rows another run is claiming right now are skipped, not waited for (PostgreSQL).
        claimable = claimable.select_for_update(of=("self",), skip_locked=True)
    claimable_sql, claimable_params = claimable.query.sql_with_params()
    sql = f"""
        UPDATE {_table(Reminder)} SET claimed_at = %s, claimed_by = %s,
            uncertain_sends = uncertain_sends + CASE WHEN claimed_at IS NULL THEN 0 ELSE 1 END
        WHERE id IN ({claimable_sql})
        RETURNING id, uncertain_sends
    """  # noqa: S608 (the text is Django's compiled SQL and the models' table names)
    return sql, [_adapt(claim.at), claim.run_id, *claimable_params]


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _adapt(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def _claim(claim: Claim, limit: int | None = None) -> list[tuple[int, int]]:
    """Create the reminders now due and claim those nobody else holds (at most `limit`).

    Returns (id, uncertain sends) of each, by id. Two statements, whatever the number of tasks:
    the rows never pass through Python. The run's own earlier claim is taken back, lease or not.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(*_create_due(claim.at))
        cursor.execute(*_claim_free(claim, limit))
        return sorted((row[0], row[1]) for row in cursor.fetchall())


def _take(reminder_ids: list[int], *, run: Claim, chunk: Claim) -> list[tuple[int, int]]:
    """Take over, in one statement, those of the reminders still pending under the run's claim,
    or under this chunk's own (a redelivery: its worker died). Of those it held, the lowest id
    was maybe in flight then, and counts as an uncertain send; the chunk sent the others in id
    order, each committed, so they were not. Returns (id, uncertain sends), by id."""
    if not reminder_ids:
        return []
    table = _table(Reminder)
    ids = ", ".join(["%s"] * len(reminder_ids))
    pending = Reminder.Status.PENDING.value
    sql = f"""
        UPDATE {table} SET claimed_at = %s, claimed_by = %s,
            uncertain_sends = uncertain_sends + CASE
                WHEN claimed_at IS NOT NULL AND claimed_by = %s AND id = (
                    SELECT min(held.id) FROM {table} held
                    WHERE held.id IN ({ids}) AND held.status = %s
                        AND held.claimed_at IS NOT NULL AND held.claimed_by = %s
                ) THEN 1 ELSE 0 END
        WHERE id IN ({ids}) AND status = %s
            AND ((claimed_by = %s AND claimed_at = %s) OR claimed_by = %s)
        RETURNING id, uncertain_sends
    """  # noqa: S608 (the text is the models' table names and placeholders)
    params = [_adapt(chunk.at), chunk.run_id, chunk.run_id, *reminder_ids, pending, chunk.run_id]
    params += [*reminder_ids, pending, run.run_id, _adapt(run.at), chunk.run_id]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted((row[0], row[1]) for row in cursor.fetchall())


def _spend_resend(reminder_id: int, *, claim: Claim) -> str | None:
    """Count the send about to repeat an uncertain one, in a commit before it goes.

    So a worker dying during it leaves the count behind. Returns the outcome when the reminder
    is not to be sent (taken, or out of sends), else None.
    """
    with transaction.atomic():
        reminder = _locked(reminder_id, claim=claim)
        if reminder is None:
            return "taken"
        if reminder.uncertain_sends >= MAX_UNCERTAIN_SENDS:
            reminder.status = Reminder.Status.FAILED
            reminder.error = (
                f"not sent again: {reminder.uncertain_sends} sends may have reached SES"
            )
            logger.error("reminder %s failed: %s", reminder.id, reminder.error)
            reminder.save(update_fields=["status", "error"])
            return str(reminder.status)
        reminder.uncertain_sends += 1
        reminder.save(update_fields=["uncertain_sends"])
    return None


def _deliver(reminder_id: int, *, claim: Claim, resend: bool, email_backend) -> str:
    """Send one reminder of our claim under its row lock, and record it in its own commit.

    `resend`: this send repeats an uncertain one and is already counted (_spend_resend).
    """
    sent: Reminder | None = None
    try:
        with transaction.atomic():
            reminder = _locked(reminder_id, claim=claim)
            if reminder is None:
                return "taken"  # another run finished it, or took over our claim
            task = reminder.task
            if task.status == Task.Status.COMPLETED or task.due_date != reminder.due_date:
                # Completed or re-dated since the claim: released, so it is claimed again only
                # if the task is reopened with this due date (a new one has its own reminder).
                reminder.claimed_at = None
                if resend:
                    reminder.uncertain_sends -= 1  # counted for a send that did not happen
                reminder.save(update_fields=["claimed_at", "uncertain_sends"])
                return "not_due"
            outcome = _send(reminder, email_backend, resend=resend)
            sent = reminder  # SES has answered: from here on its outcome must reach the record
            _record(reminder)
        return outcome
    except DatabaseError as exc:  # a lock or statement timeout, the database gone
        if sent is None:  # nothing went out: the claim stays, a later run takes it over
            logger.warning("reminder %s not sent, the database failed: %s", reminder_id, exc)
            return "db_error"
        return _record_again(sent, claim=claim, outcome=outcome, error=exc)


def _record_again(reminder: Reminder, *, claim: Claim, outcome: str, error: Exception) -> str:
    """Record an outcome SES gave whose commit failed, in fresh transactions, a few times.

    Still failing, the reminder keeps our claim: the run that takes it over after the lease
    counts the send as uncertain (one duplicate at most)."""
    for attempt in range(RECORD_ATTEMPTS):
        logger.warning("reminder %s: recording its outcome failed, again: %s", reminder.id, error)
        time.sleep(RECORD_BACKOFF_SECONDS * (attempt + 1))
        try:
            with transaction.atomic():
                if _locked(reminder.id, claim=claim) is None:
                    return "taken"
                _record(reminder)
            return outcome
        except DatabaseError as exc:
            error = exc
    logger.error("reminder %s: outcome %s not recorded: %s", reminder.id, outcome, error)
    return "db_error"


def _locked(reminder_id: int, *, claim: Claim) -> Reminder | None:
    """The reminder, row-locked, if it is still pending and ours; with its task as it is now
    (the fields the email and the record need) and the address it goes to as `send_to`.

    One statement whose SQL is compiled once per process (building it cost more than running
    it), its row made into the models without the ORM's per-query work (on PostgreSQL)."""
    values = (reminder_id, Reminder.Status.PENDING.value, claim.at, claim.run_id)
    if connection.vendor == "postgresql":  # psycopg gives each column its Python type
        with connection.cursor() as cursor:
            _execute_prepared(cursor, "taskwire_reminder_lock", *_lock_statement(values))
            row = cursor.fetchone()
    else:  # the local SQLite file's rows need the ORM's converters (times come back as text)
        row = _lock_query(*values).first()
    if row is None:
        return None
    fields = dict(zip(_REMINDER_FIELDS + _TASK_FIELDS + ("send_to",), row, strict=True))
    task = Task(
        id=fields["task_id"],
        **{name.removeprefix("task__"): fields[name] for name in _TASK_FIELDS[:-2]},
    )
    if task.assignee_id is not None:  # for the task's representation in its event
        task.assignee = User(id=task.assignee_id, username=fields["task__assignee__username"])
    task.project = Project(id=task.project_id, name=fields["task__project__name"])
    reminder = Reminder(**{name: fields[name] for name in _REMINDER_FIELDS})
    reminder.task = task
    reminder.send_to = fields["send_to"]  # type: ignore[attr-defined]
    return reminder


_REMINDER_FIELDS = ("id", "task_id", "due_date", "status", "uncertain_sends", "claimed_at",
                    "claimed_by", "recipient", "message_id", "error", "sent_at")  # fmt: skip
_TASK_FIELDS = ("task__project_id", "task__assignee_id", "task__title", "task__description",
                "task__status", "task__due_date", "task__project__name",
                "task__assignee__username")  # fmt: skip
# Stand-ins for the values while the statement is compiled, each of its parameter's type and
# unlike any constant of the statement.
_MARKERS = (
    987_654_321,
    "\x00status",
    datetime(1999, 9, 9, 9, 9, 9, 999_999, tzinfo=UTC),
    "\x00run",
)
_lock_sql: dict[str, tuple[str, list[int | None], list]] = {}


def _lock_query(reminder_id: int, status: str, claimed_at: datetime, claimed_by: str) -> QuerySet:
    return (
        Reminder.objects.filter(
            id=reminder_id, status=status, claimed_at=claimed_at, claimed_by=claimed_by
        )
        .order_by()
        .select_for_update(of=("self",))
        .annotate(send_to=reminder_recipient(via="task__"))
        .values_list(*_REMINDER_FIELDS, *_TASK_FIELDS, "send_to")
    )


def _lock_statement(values: tuple) -> tuple[str, list]:
    """_lock_query(*values)'s SQL, compiled once per database, and its parameters."""
    if connection.alias not in _lock_sql:
        sql, params = _lock_query(*_MARKERS).query.sql_with_params()
        places = [_MARKERS.index(p) if p in _MARKERS else None for p in params]
        if sorted(place for place in places if place is not None) != list(range(len(_MARKERS))):
            raise ValueError(f"_lock_query must use each value once: {params}")
        _lock_sql[connection.alias] = sql, places, list(params)
    sql, places, constants = _lock_sql[connection.alias]
    adapted = [*values[:2], _adapt(values[2]), values[3]]
    params = [
        c if place is None else adapted[place] for place, c in zip(places, constants, strict=True)
    ]
    return sql, params


_prepared: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()
_PG_TYPES = {Int4: "integer", int: "bigint", str: "text", datetime: "timestamptz"}


def _execute_prepared(cursor, name: str, sql: str, params: list) -> None:
    """Run `sql` as PostgreSQL's prepared statement `name`, made once per database session
    (PREPARE outlives a rollback): its plan is made once, not once per email. Planning the
    locking read (five tables) cost PostgreSQL 0.65 ms of CPU per email, running it 0.2 ms.
    Django's own cursor runs PREPARE and EXECUTE, so its query log and wrappers see them."""
    session = connection.connection  # the database session (a pooled psycopg connection)
    done = _prepared.setdefault(session, set())
    name = f"{name}_{hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:12]}"
    if name not in done:
        cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [name])
        if cursor.fetchone() is None:
            if "%%" in sql or sql.count("%s") != len(params):
                raise ValueError(f"cannot number the placeholders of {sql!r}")
            numbered = iter(range(1, len(params) + 1))
            text = re.sub("%s", lambda _: f"${next(numbered)}", sql)
            types = ", ".join(_PG_TYPES[type(param)] for param in params)
            cursor.execute(f"PREPARE {name} ({types}) AS {text}")
        done.add(name)
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)


def _release(reminder_ids: list[int], *, claim: Claim) -> int:
    """Hand reminders we claimed but did not send to the next run; return how many."""
    ours = Reminder.objects.filter(
        id__in=reminder_ids,
        status=Reminder.Status.PENDING,
        claimed_at=claim.at,
        claimed_by=claim.run_id,
    )
    return ours.update(claimed_at=None)


def _send(reminder: Reminder, email_backend, *, resend: bool) -> str:
    """Send one reminder; set its outcome on it (written by _record)."""
    task = reminder.task
    recipient = reminder.send_to
    if not recipient:
        logger.warning("reminder for task %s skipped: no assignee or owner email", task.id)
        reminder.status = Reminder.Status.SKIPPED
        return str(reminder.status)  # the value, not the enum member
    subject, body = _message(task)
    reminder.recipient = recipient
    try:
        reminder.message_id = send_email(
            to=recipient, subject=subject, body=body, connection=email_backend
        )
    except EmailRejected as exc:
        logger.error("reminder for task %s to %s rejected: %s", task.id, recipient, exc)
        return _fail(reminder, str(exc))
    except EmailUnavailable as exc:
        logger.warning("reminder for task %s not sent yet, a later run retries: %s", task.id, exc)
        if resend:
            reminder.uncertain_sends -= 1  # SES did not take it: the send does not count
        reminder.claimed_at = None  # still pending: the next run claims it again
        return "retry"
    except EmailUncertain as exc:
        return _uncertain(reminder, str(exc), resend=resend)
    reminder.sent_at = timezone.now()
    reminder.status = Reminder.Status.SENT
    return str(reminder.status)


def _uncertain(reminder: Reminder, error: str, *, resend: bool) -> str:
    """SES may have sent it: once, a later run tries again; twice, it is failed."""
    if resend:
        logger.error("reminder %s failed, its outcome unknown twice: %s", reminder.id, error)
        return _fail(reminder, f"outcome unknown: {error}")
    logger.warning("reminder %s may not have been sent, one more try later: %s", reminder.id, error)
    reminder.uncertain_sends += 1
    reminder.error = f"outcome unknown: {error}"
    reminder.claimed_at = None
    return "retry"


def _fail(reminder: Reminder, error: str) -> str:
    reminder.error = error
    reminder.status = Reminder.Status.FAILED
    return str(reminder.status)


def _record(reminder: Reminder) -> None:
    """Write the reminder's outcome (one statement of its own SQL: no save() to compile)."""
    sql = f"""
        UPDATE {_table(Reminder)} SET status = %s, recipient = %s, sent_at = %s,
            message_id = %s, error = %s, claimed_at = %s, uncertain_sends = %s
        WHERE id = %s
    """  # noqa: S608 (the text is the model's table name and placeholders)
    with connection.cursor() as cursor:
        cursor.execute(sql, [
            str(reminder.status), reminder.recipient, _adapt(reminder.sent_at),
            reminder.message_id, reminder.error, _adapt(reminder.claimed_at),
            reminder.uncertain_sends, reminder.id,
        ])  # fmt: skip
    if reminder.status == Reminder.Status.SENT:
        # A task whose due date changed since the claim was re-armed: it keeps NULL.
        task_mark_reminded(task=reminder.task, due_date=reminder.due_date, sent_at=reminder.sent_at)


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
