"""Fixtures of the local run's tests."""

from collections.abc import Iterator

import pytest

from local.tests.ses_server import running_moto_server


@pytest.fixture
def moto_server() -> Iterator[str]:
    """The endpoint URL of an empty moto server, for SES_ENDPOINT_URL."""
    with running_moto_server() as url:
        yield url
