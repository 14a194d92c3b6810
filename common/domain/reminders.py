"""The reminder rule of the domain: which tasks are due a reminder, and to whom it goes.

The job (scheduled.reminders) runs it as set-based SQL compiled from these filters; the partial
index task_reminder_due_idx (common.domain.models) serves exactly this condition.
"""

from datetime import datetime, timedelta

from django.db.models import Case, Exists, F, OuterRef, Q, Value, When

from common.domain.models import Membership, Task

WINDOW = timedelta(hours=24)  # due within this much of now


def reminder_due(now: datetime, *, via: str = "") -> Q:
    """Open tasks, due after `now` and within WINDOW, not reminded for their due date yet.

    `via`: the path to the task from the model filtered (`"task__"` from a Reminder).
    """
    return Q(
        **{
            f"{via}due_date__gt": now,
            f"{via}due_date__lte": now + WINDOW,
            f"{via}reminder_sent_at__isnull": True,
        }
    ) & ~Q(**{f"{via}status": Task.Status.COMPLETED})


def assignee_is_member(*, via: str = "") -> Exists:
    """Whether the task's assignee is a member of its project: an annotation for the job's read
    (`via` as for reminder_due), so the rule costs no query of its own."""
    members = Membership.objects.filter(
        project_id=OuterRef(f"{via}project_id"), user_id=OuterRef(f"{via}assignee_id")
    )
    return Exists(members)


def reminder_recipient(*, via: str = "") -> Case:
    """The address a task's reminder goes to, as an annotation (`via` as for reminder_due): the
    assignee's while they are a member of the task's project, else the project owner's; ""
    when neither has one."""
    return Case(
        When(
            assignee_is_member(via=via),
            **{f"{via}assignee__email__gt": ""},
            then=F(f"{via}assignee__email"),
        ),
        When(**{f"{via}project__owner__email__gt": ""}, then=F(f"{via}project__owner__email")),
        default=Value(""),
    )
