"""Suite-wide fixtures."""

import os

import pytest
import redis


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with none of this run's cached pages or versions.

    Only this run's keys (its own prefix) go: the Redis is shared. The suite's Redis is named
    by the environment (common.infra.settings_test), whatever a test class overrides.
    """
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(match=f"{os.environ['REDIS_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    yield


@pytest.fixture
def user_changes_followed():
    """common.infra.user_changes.follow running (on a loop of its own), listening when this
    returns: as the realtime service runs it. Needs a committing test (transaction=True)."""
    import asyncio
    import contextlib
    import threading
    import time

    from common.infra import user_changes
    from common.tests.user_changes import listening

    loop = asyncio.new_event_loop()
    follower = loop.create_task(user_changes.follow())

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(follower)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not listening():
        assert time.monotonic() < deadline, "user_changes.follow did not LISTEN"
        time.sleep(0.05)
    yield
    loop.call_soon_threadsafe(follower.cancel)
    thread.join(10)
    loop.close()
