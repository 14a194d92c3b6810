"""The data of one bench.ws_latency run, made in the bench database: `python -m bench._ws_setup`.

Run with the servers' environment (DJANGO_SETTINGS_MODULE=common.settings, DATABASE_URL, ...).
Creates (or reuses) the user `bench-ws`, creates a fresh project and one task in it through the
services, and prints one JSON line: the project id, an access token of the user, and the
task.created event of that task as clients receive it (the template of the reference payload).
"""

import json
from datetime import UTC, datetime

import django


def main() -> None:
    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    from common import services
    from common.events import EventType, envelope
    from common.models import Event

    user, created = get_user_model().objects.get_or_create(username="bench-ws")
    if created:
        user.set_unusable_password()
        user.save()
    project = services.project_create(
        actor=user, name=f"ws_latency {datetime.now(UTC).isoformat(timespec='seconds')}"
    )
    services.task_create(
        actor=user, project=project, title="ws_latency 0", due_date=datetime(2030, 1, 1, tzinfo=UTC)
    )
    event = Event.objects.get(project_id=project.id, type=EventType.TASK_CREATED)
    token = str(AccessToken.for_user(user))
    print(json.dumps({"project": project.id, "token": token, "template": envelope(event)}))


if __name__ == "__main__":
    main()
