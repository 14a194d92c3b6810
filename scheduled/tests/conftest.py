"""SES for the job tests: moto's mock, with the sender verified as production would have it."""

import email
import email.policy
from email.utils import parseaddr

import boto3
import pytest
from django.conf import settings
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from scheduled.email import forget_backends


class Outbox:
    """What went out through the mocked SES."""

    def __init__(self) -> None:
        self._backend = ses_backends[DEFAULT_ACCOUNT_ID][settings.AWS_SES_REGION_NAME]

    def messages(self) -> list[email.message.Message]:
        messages = self._backend.sent_messages
        return [
            email.message_from_string(m.raw_data, policy=email.policy.default) for m in messages
        ]

    def recipients(self) -> list[str]:
        return [message["To"] for message in self.messages()]


@pytest.fixture
def ses(settings):
    settings.EMAIL_BACKEND = "scheduled.email.SESBackend"  # the test runner swaps in locmem
    forget_backends()  # this thread's kept SES client is made inside this mock, not another
    with mock_aws():
        client = boto3.client("ses", region_name=settings.AWS_SES_REGION_NAME)
        client.verify_email_identity(EmailAddress=parseaddr(settings.DEFAULT_FROM_EMAIL)[1])
        yield Outbox()
    forget_backends()
