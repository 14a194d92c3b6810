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
