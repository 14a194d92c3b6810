"""Beat's scheduler: a scheduled run that could not be queued stays due until it is."""

import logging
import time

from celery.beat import PersistentScheduler, ScheduleEntry, SchedulingError

logger = logging.getLogger(__name__)


class RetryingScheduler(PersistentScheduler):
    """Celery's PersistentScheduler, but a run is never skipped because its send failed.

    Celery's moves an entry on to its next run before sending it and only logs a failed send,
    so a broker outage at 08:00 skips that day's summaries. Here an entry whose send failed is
    put back as it was (still due), and Beat tries again every `retry_seconds` until the broker
    takes it; the entry's `expires` then counts from that send.
    """

    retry_seconds = 5.0

    def __init__(self, *args, **kwargs) -> None:
        self._unsent: list[ScheduleEntry] = []
        self._retry_at = 0.0
        super().__init__(*args, **kwargs)

    def apply_entry(self, entry: ScheduleEntry, producer=None) -> None:
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except SchedulingError as exc:
            logger.warning(
                "beat: %s not queued, trying again in %ss: %s", entry.name, self.retry_seconds, exc
            )
            self._unsent.append(entry)

    def tick(self, *args, **kwargs) -> float:
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            return min(wait, self.max_interval)
        interval = super().tick(*args, **kwargs)
        if not self._unsent:
            return interval
        for entry in self._unsent:
            self.schedule[entry.name] = entry  # as it was before tick() advanced it: still due
        self._unsent.clear()
        self.populate_heap()  # from the schedule, so the heap has them due again
        self._retry_at = time.monotonic() + self.retry_seconds
        return self.retry_seconds
