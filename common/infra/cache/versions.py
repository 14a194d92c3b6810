"""Versions of the list cache, and the bumps that could not be recorded.

A committed write bumps the versions of the lists it changes, so their next read builds a new
page. When Redis does not take the bump (down, frozen, partitioned), the process remembers it:
it is retried before this process's next cache read and every few seconds in the background,
and until it is recorded no page built before it is served here (pages carry when they were
built). Other processes see the write once the retry lands.
"""

import contextlib
import logging
import threading

from common.infra.cache.keys import version_name
from common.infra.cache.store import CacheDown, Messages, now_us, store

logger = logging.getLogger("common.infra.cache")

RETRY_SECONDS = 1.0  # the first background retry; later ones back off to MAX_RETRY_SECONDS
MAX_RETRY_SECONDS = 30.0


class PendingBumps:
    """The bumps one store has not recorded yet, and the time before which its pages are stale."""

    def __init__(self, target) -> None:
        self.store = target
        self.names: set[str] = set()
        self.refuse_before = 0  # microseconds; 0 while nothing is pending
        self.failures = 0  # counts failed bumps, so a retry clears only what it covered
        self.lock = threading.Lock()
        self.retrying = threading.Lock()  # one retry at a time, not one per waiting reader
        self.timer: threading.Timer | None = None

    def remember(self, names: tuple[str, ...], at: int) -> None:
        with self.lock:
            self.names.update(names)
            self.refuse_before = max(self.refuse_before, at)
            self.failures += 1
            if self.timer is None:
                self._schedule(RETRY_SECONDS)
        logger.error("cache: could not bump %s; retrying, refusing older pages meanwhile", names)

    def retry(self) -> None:
        """Record what is pending; CacheDown while it cannot be (or another thread is at it)."""
        if not self.names:
            return
        if not self.retrying.acquire(blocking=False):
            raise CacheDown  # another thread is recording them: the database answers meanwhile
        try:
            with self.lock:
                names, seen = sorted(self.names), self.failures
            self.store.bump([version_name(name) for name in names], now_us())
        finally:
            self.retrying.release()
        with self.lock:
            if self.failures == seen:  # no bump failed while this one ran
                self.names.clear()
                self.refuse_before = 0
        logger.warning("cache: recorded the bumps of %s that had failed", names)

    def _schedule(self, delay: float) -> None:
        self.timer = threading.Timer(delay, self._retry_in_background, args=(delay,))
        self.timer.daemon = True
        self.timer.start()

    def _retry_in_background(self, delay: float) -> None:
        with contextlib.suppress(CacheDown):  # still refused: a later round tries again
            self.retry()
        with self.lock:
            self.timer = None
            if self.names:
                self._schedule(min(delay * 2, MAX_RETRY_SECONDS))


_pending: dict[object, PendingBumps] = {}
_pending_lock = threading.Lock()


def pending_bumps(target=None) -> PendingBumps:
    """The pending bumps of `target` (default: the current store)."""
    target = target or store()
    if (found := _pending.get(target)) is not None:  # every hit asks: no lock, nothing made
        return found
    with _pending_lock:
        return _pending.setdefault(target, PendingBumps(target))


def bump(names: tuple[str, ...], publish: Messages = ()) -> bool:
    """Invalidate every page that depends on `names`, now; then PUBLISH `publish` on the same
    Redis in the same round trip. False when Redis did not take them (the bump is retried, the
    messages are not)."""
    names = tuple(dict.fromkeys(names))
    target, start = store(), now_us()
    try:
        if target.skipped():
            raise CacheDown
        target.bump([version_name(name) for name in names], start, publish)
    except CacheDown:
        pending_bumps(target).remember(names, start)
        return False
    return True


def retry_pending() -> None:
    """Record the bumps that failed before; raises CacheDown while Redis still refuses them."""
    pending_bumps().retry()


def page_is_fresh(built_at: int) -> bool:
    """False for a page built before a bump this process could not record yet."""
    return built_at >= pending_bumps().refuse_before


def read_versions(names: list[str]) -> dict[str, int | None]:
    found = store().get_many([version_name(name) for name in names])
    return {name: None if raw is None else int(raw) for name, raw in zip(names, found, strict=True)}


def start_versions(names: list[str]) -> dict[str, int] | None:
    """Create the absent versions `names`; their values, or None when another got there first.

    Called after a page was built from the database: had a write bumped one of them meanwhile,
    it would exist by now, and the page would be older than that write. A version restarts
    above any value it ever had (it counts up from the time it started).
    """
    start = now_us()
    if store().add_all({version_name(name): str(start).encode() for name in names}):
        return dict.fromkeys(names, start)
    return None
