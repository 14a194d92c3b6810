"""SES for local runs: moto, in this process or as a server, and the outbox of what it was sent.

The embedded run starts moto's `mock_aws` here, so django-ses talks to a real boto3 client that
moto answers inside the process. With SES_ENDPOINT_URL set (a moto server, as in compose) the
same code sends over HTTP, and the outbox reads the server's state from its /moto-api/.
"""

import json
import os
import urllib.request
from datetime import UTC
from email import message_from_string, policy
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from django.conf import settings

from common.api.timestamps import rfc3339_utc

FAKE_CREDENTIALS = {  # moto accepts anything; these keep boto3 from looking for real ones
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_in_process() -> None:
    """Answer every SES call of this process with moto (the embedded run), until it exits."""
    from moto import mock_aws

    for name, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    mock_aws().start()


def verify_sender() -> str:
    """Verify DEFAULT_FROM_EMAIL's address with (mock) SES, which refuses unverified senders."""
    import boto3

    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    client = boto3.client(
        "ses",
        region_name=settings.AWS_SES_REGION_NAME,
        endpoint_url=settings.SES_ENDPOINT_URL or None,
    )
    client.verify_email_identity(EmailAddress=address)
    return address


def outbox() -> list[dict]:
    """The emails SES was sent, newest first: to, subject, body, sent_at."""
    messages = [_describe(raw) for raw in reversed(_raw_messages())]  # stored oldest first
    return sorted(messages, key=lambda message: message["sent_at"] or "", reverse=True)


def _raw_messages() -> list[str]:
    if settings.SES_ENDPOINT_URL:  # a moto server: its model dump holds every sent message
        url = settings.SES_ENDPOINT_URL.rstrip("/") + "/moto-api/data.json"
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (the configured moto endpoint)
            data = json.load(response)
        return [message["raw_data"] for message in data.get("ses", {}).get("RawMessage", [])]
    from moto.core import DEFAULT_ACCOUNT_ID  # moto in this process
    from moto.ses.models import ses_backends

    backend = ses_backends[DEFAULT_ACCOUNT_ID][settings.AWS_SES_REGION_NAME]
    return [message.raw_data for message in backend.sent_messages if hasattr(message, "raw_data")]


def _describe(raw: str) -> dict:
    message = message_from_string(raw, policy=policy.default)
    body = message.get_body(preferencelist=("plain", "html"))
    return {
        "to": ", ".join(address for _, address in getaddresses(message.get_all("To", []))),
        "subject": str(message["Subject"] or ""),
        "body": body.get_content().replace("\r\n", "\n") if body is not None else "",
        "sent_at": _sent_at(message["Date"]),
    }


def _sent_at(header: str | None) -> str | None:
    if not header:
        return None
    sent_at = parsedate_to_datetime(header)
    if sent_at.tzinfo is None:  # "-0000": UTC, as Django writes it
        sent_at = sent_at.replace(tzinfo=UTC)
    return rfc3339_utc(sent_at)


if __name__ == "__main__":  # compose's ses-init step: `python -m local.ses`
    import django

    django.setup()
    print(f"verified {verify_sender()} with {settings.SES_ENDPOINT_URL or 'Amazon SES'}")
