"""`manage.py prune_events`: delete logged events older than the retention period
(EVENT_RETENTION_DAYS, default 7)."""

from django.core.management.base import BaseCommand

from common.domain.events import event_prune, retention


class Command(BaseCommand):
    help = "Delete events older than the retention period; clients with older cursors resync."

    def handle(self, *args, **options) -> None:
        deleted = event_prune()
        self.stdout.write(f"pruned {deleted} events older than {retention().days} days")
