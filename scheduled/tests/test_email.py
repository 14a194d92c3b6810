"""The SES backend's per-send shortcuts, pinned: they change what a send costs, not what it does."""

import importlib.util
import sys
import threading

import django_ses
import pytest

from scheduled import email
from scheduled.email import send_email, shared_backend


def test_the_ses_client_does_not_validate_parameters_nor_retry(ses):
    client = shared_backend().connection

    # Validated, a number where SES's model says string is refused before anything is sent.
    client.verify_email_identity(EmailAddress=123)  # sent as "123", and SES answers
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_an_email_still_goes_out_unvalidated(ses):
    message_id = send_email(to="a@example.com", subject="Hello", body="Hi.\n")

    assert message_id
    [message] = ses.messages()
    assert message["To"] == "a@example.com"
    assert message["Subject"] == "Hello"


def test_every_thread_sends_through_the_processs_one_ses_client(ses, settings):
    backends = []

    def send(n: int) -> None:
        backends.append(shared_backend())
        send_email(to=f"t{n}@example.com", subject="s", body="b", connection=backends[-1])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(backends) == 4
    assert len({id(backend) for backend in backends}) == 1
    assert len({id(backend.connection) for backend in backends}) == 1
    assert sorted(ses.recipients()) == [f"t{n}@example.com" for n in range(4)]
    assert shared_backend().connection.meta.config.max_pool_connections >= 4  # one each
    settings.AWS_SES_REGION_ENDPOINT_URL = "http://127.0.0.1:1"  # another SES: another client
    assert shared_backend() is not backends[0]


@pytest.mark.skipif(
    "dkim" in sys.modules and sys.modules["dkim"] is not None,
    reason="dkim installed: django-ses signs, nothing is remembered",
)
def test_an_absent_dkim_is_remembered_and_a_message_goes_unsigned_as_before(monkeypatch):
    monkeypatch.delitem(sys.modules, "dkim", raising=False)
    assert importlib.util.find_spec("dkim") is None  # the package is not installed here

    email._remember_no_dkim()

    assert sys.modules["dkim"] is None
    with pytest.raises(ImportError):  # as django-ses's `import dkim` sees it, at once
        import dkim  # noqa: F401
    signed = django_ses.dkim_sign(b"raw", dkim_domain="example.com", dkim_key=b"key")
    assert signed == b"raw"


def test_an_installed_dkim_is_left_alone(monkeypatch):
    module = type(sys)("dkim")
    monkeypatch.setitem(sys.modules, "dkim", module)

    email._remember_no_dkim()

    assert sys.modules["dkim"] is module
