"""The domain: projects, their tasks, task comments, daily summary reports and the event log.

The only models in the codebase. They hold data and constraints, no behaviour: every write goes
through common.domain.services, every read through common.domain.selectors.
"""

import uuid

from django.conf import settings
from django.db import models

# The longest description or comment (CONTRACT section 1): one page, event or email stays small.
TEXT_MAX_LENGTH = 65_536


class Project(models.Model):
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="", max_length=TEXT_MAX_LENGTH)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="projects",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The seq of the project's last event; domain.events takes the next one under the row lock.
    event_seq = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In Progress"
        COMPLETED = "completed", "Completed"

    project = models.ForeignKey(Project, related_name="tasks", on_delete=models.CASCADE)
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="", max_length=TEXT_MAX_LENGTH)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tasks",
    )
    due_date = models.DateTimeField()
    # Kept by comment_create in the comment's transaction, so lists need no join or subquery.
    comment_count = models.PositiveIntegerField(default=0, editable=False)
    reminder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["due_date"], name="task_due_date_idx"),
            # A project's page in id order: its rows, not a walk of the whole table's ids
            # (bench jobs' list growth: page 1 of a project at 1M tasks, 35 ms -> 0.1 ms).
            models.Index(fields=["project", "id"], name="task_project_id_idx"),
            # send_due_reminders' window: open tasks not yet reminded, by due date.
            models.Index(
                fields=["due_date"],
                name="task_reminder_due_idx",
                condition=models.Q(reminder_sent_at__isnull=True) & ~models.Q(status="completed"),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Comment(models.Model):
    task = models.ForeignKey(Task, related_name="comments", on_delete=models.CASCADE)
    author = models.CharField(max_length=255)
    content = models.TextField(max_length=TEXT_MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["task", "created_at", "id"], name="comment_task_order_idx")]

    def __str__(self) -> str:
        return f"{self.author} on task {self.task_id}"


class Reminder(models.Model):
    """The reminder email for one task and one due date: unique, so it goes out at most once.

    A run claims it (`claimed_at`); a claim older than the lease, from a worker that died
    before sending, is taken over by a later run.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    task = models.ForeignKey(Task, related_name="reminders", on_delete=models.CASCADE)
    due_date = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    recipient = models.EmailField(blank=True, default="")
    message_id = models.CharField(max_length=255, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # The run holding the claim (a Celery task id, the same when its message is redelivered):
    # that run takes its claim back at once, whatever the lease.
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    # Sends that may have reached SES with no outcome on record (a read timeout, a claim whose
    # worker died): after two, it is never sent again.
    uncertain_sends = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "due_date"], name="reminder_unique_task_due")
        ]
        indexes = [
            models.Index(
                fields=["claimed_at"],
                name="reminder_pending_idx",
                condition=models.Q(status="pending"),
            )
        ]

    def __str__(self) -> str:
        return f"reminder for task {self.task_id} due {self.due_date}"


class SummaryReport(models.Model):
    """A project's daily summary: task counts as of `generated_at`, and how its email went."""

    COUNTS = (
        "total",
        "pending",
        "in_progress",
        "completed",
        "overdue",
        "due_next_24h",
        "completed_last_24h",
        "created_last_24h",
        "comments_last_24h",
    )

    class EmailStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, related_name="summaries", on_delete=models.CASCADE)
    date = models.DateField()
    generated_at = models.DateTimeField()
    total = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    in_progress = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    overdue = models.PositiveIntegerField(default=0)
    due_next_24h = models.PositiveIntegerField(default=0)
    completed_last_24h = models.PositiveIntegerField(default=0)
    created_last_24h = models.PositiveIntegerField(default=0)
    comments_last_24h = models.PositiveIntegerField(default=0)
    emailed_to = models.EmailField(null=True, blank=True)  # noqa: DJ001 (the contract says null)
    email_status = models.CharField(
        max_length=16, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    email_error = models.TextField(blank=True, default="")  # why it failed; not in the API

    class Meta:
        ordering = ["-date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "date"], name="summary_unique_project_date")
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.date}"


class Event(models.Model):
    """One committed change, as clients receive it: the outbox behind /ws/notifications/.

    `project_id` is a plain column, not a foreign key, so a project's events (its
    `project.deleted` among them) outlive the project for as long as events are kept.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project_id = models.BigIntegerField()
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=32)
    occurred_at = models.DateTimeField()
    actor = models.CharField(max_length=150, null=True, blank=True)  # noqa: DJ001 (null: the system)
    data = models.JSONField()

    class Meta:
        ordering = ["project_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["project_id", "seq"], name="event_unique_project_seq")
        ]
        indexes = [models.Index(fields=["occurred_at"], name="event_occurred_at_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.project_id}:{self.seq}"


class Membership(models.Model):
    """A user's role in a project: the only way into it (domain.access decides what it allows).

    One per project and user; exactly one `owner` per project, the user `Project.owner` names.
    """

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        MEMBER = "member", "Member"
        ADMIN = "admin", "Admin"
        OWNER = "owner", "Owner"

    project = models.ForeignKey(Project, related_name="memberships", on_delete=models.CASCADE)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, related_name="memberships", on_delete=models.CASCADE
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user"),
            models.UniqueConstraint(
                fields=["project"], condition=models.Q(role="owner"), name="membership_one_owner"
            ),
        ]
        # The visible projects of a user: "which projects is this user in" goes by user first.
        indexes = [models.Index(fields=["user", "project"], name="membership_user_project_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} in {self.project_id}"


class IdempotencyRecord(models.Model):
    """The answer to a user's POST sent with an `Idempotency-Key`, replayed to its retries.

    Written in the write's own transaction (common.api.idempotency), so a write that rolled back
    leaves none; kept 24 hours, pruned by the next keyed POST of the same user.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # A digest of the request's method, path and body: the same key with another request is 422.
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    headers = models.JSONField()  # the answer's Content-Type, Location and ETag
    body = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key")
        ]
        indexes = [models.Index(fields=["user", "created_at"], name="idempotency_user_age_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.key}"


class Webhook(models.Model):
    """Where a project's events are POSTed (common.domain.webhooks, scheduled.webhooks).

    `secret` signs every delivery (Standard Webhooks, `whsec_` and base64): it is shown once, in
    the answer that made it, and no serializer or admin names it afterwards.
    """

    project = models.ForeignKey(Project, related_name="webhooks", on_delete=models.CASCADE)
    url = models.URLField(max_length=2048)
    events = models.JSONField(default=list)  # event types, or ["*"]
    active = models.BooleanField(default=True)
    secret = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Why it was turned off by the system (a 410 from the receiver), "" otherwise.
    disabled_reason = models.CharField(max_length=255, blank=True, default="", editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "active"], name="webhook_project_active_idx")]

    def __str__(self) -> str:
        return f"webhook {self.pk} of project {self.project_id}"


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one webhook: the outbox and the delivery log.

    Made `pending` in the event's own transaction (attempt 1), or by the attempt before it
    failed (with `due_at` after the retry delay). `queued_at` says a worker was sent it; the
    relay (scheduled.webhooks.relay) sends those never sent, or whose worker died. `claimed_at`
    and `claimed_by` (the Celery task id) keep two workers from sending the same attempt.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, related_name="deliveries", on_delete=models.CASCADE)
    event_id = models.UUIDField()  # the Event, kept as long as the log keeps it
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    due_at = models.DateTimeField()
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["webhook", "-id"], name="delivery_webhook_log_idx"),
            # The relay's look-up: pending attempts by when they are due.
            models.Index(
                fields=["due_at"],
                name="delivery_pending_due_idx",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.event_id} to webhook {self.webhook_id}"
