"""A moto server for the tests that run the system with SES_ENDPOINT_URL, as compose does."""

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer


@contextmanager
def running_moto_server() -> Iterator[str]:
    """A moto server in this process, empty; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # Moto's state belongs to the process, shared by every server and mock_aws in it:
        # without a reset, mail sent by an earlier test shows in this server's outbox.
        reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=5).close()
        yield url
    finally:
        server.stop()
