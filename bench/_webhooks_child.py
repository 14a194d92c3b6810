"""The webhooks bench's Django side (bench._child): the projects and webhooks, and events."""

import time

from django.db import transaction


def prepare(*, webhooks: int, receiver: str) -> dict:
    """`webhooks` projects, each with one webhook for every event to receiver/hook/{i}; the
    event log and the deliveries emptied."""
    from django.contrib.auth.models import User

    from common.domain import services
    from common.domain import webhooks as hooks
    from common.domain.models import Event, Project, WebhookDelivery

    WebhookDelivery.objects.all().delete()
    Project.objects.all().delete()
    Event.objects.all().delete()
    owner, _ = User.objects.get_or_create(username="bench-hooks")
    ids = []
    for i in range(webhooks):
        project = services.project_create(actor=owner, name=f"hooks {i}")
        hooks.webhook_create(actor=owner, project_id=project.pk, url=f"{receiver}/hook/{i}")
        ids.append(project.pk)
    Event.objects.all().delete()  # project.created went before the webhooks: none delivered
    return {"projects": ids}


def produce(*, projects: list[int], events: int, rate: float) -> dict:
    """`events` events, one in each project per transaction (publish_many: the outbox and the
    after-commit queueing of every write), at most `rate` a second (0: as fast as it goes);
    when it started and ended (unix seconds)."""
    from common.domain.events import EventType, publish_many

    start = time.time()
    started = time.monotonic()
    made = 0
    while made < events:
        batch = projects[: events - made]
        items = [
            (pk, {"id": made + n, "title": "A task of the bench", "n": made + n})
            for n, pk in enumerate(batch)
        ]
        with transaction.atomic():
            publish_many(type=EventType.TASK_UPDATED, items=items, actor=None)
        made += len(batch)
        if rate:
            ahead = made / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    return {"events": made, "start": start, "end": time.time()}


def outcome() -> dict:
    """Each event's id and commit time (occurred_at, taken in its transaction, a little before
    the commit), and the deliveries by status."""
    from django.db.models import Count

    from common.domain.models import Event, WebhookDelivery

    rows = Event.objects.values_list("id", "project_id", "occurred_at")
    times = {str(pk): at.timestamp() for pk, _, at in rows}
    projects = {str(pk): project for pk, project, _ in rows}
    statuses = dict(
        WebhookDelivery.objects.values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {"occurred": times, "projects": projects, "deliveries": statuses}
