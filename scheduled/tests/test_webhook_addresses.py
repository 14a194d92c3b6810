"""Where a webhook may connect (CONTRACT section 6): every refused range, v4 and v6 and IPv4 in
IPv6, a name that resolves to a private address, and an answer that changes between the save
and the attempt. Only the resolver (common.domain.webhooks.resolve) is replaced, to answer
what a hostile DNS would; no connection leaves this machine (a refused address is never
connected to, and the tests that connect go to a receiver on 127.0.0.1, over TLS in one)."""

import datetime
import ipaddress
import re
import ssl
import tempfile
import threading
from pathlib import Path
from unittest import mock

import aiohttp
import pytest
from django.utils import timezone

from common.domain import services, webhooks
from common.domain.models import Webhook, WebhookDelivery
from common.tests.factories import ProjectFactory
from scheduled import webhook_sender
from scheduled.tests.webhook_receiver import standard_webhooks_verify, start_receiver
from scheduled.webhooks import deliver

# (address, why it is refused), as tested: each literal in a URL, and each as a DNS answer.
REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),  # broadcast
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "private"),  # "this network"
    ("100.64.0.1", "not public"),  # carrier-grade NAT, shared
    ("192.0.0.8", "special-purpose"),  # IETF protocol assignments
    ("192.0.2.1", "private"),  # documentation
    ("198.18.0.1", "private"),  # benchmarking
    ("198.51.100.1", "private"),
    ("203.0.113.1", "private"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),  # unique local
    ("fd12:3456::1", "private"),
    ("fec0::1", "special-purpose"),  # site-local (deprecated)
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("2001:db8::1", "private"),  # documentation
    ("100::1", "reserved"),  # discard-only
    ("2001:10::1", "private"),  # ORCHID
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("::ffff:224.0.0.1", "multicast"),
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"]


def answering(*addresses: str):
    """The resolver, answering `addresses` for every name."""
    return mock.patch(
        "common.domain.webhooks.resolve",
        return_value=[ipaddress.ip_address(a) for a in addresses],
    )


@pytest.fixture(autouse=True)
def _public_only(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    settings.WEBHOOK_RETRY_SCHEDULE = []  # one attempt: nothing is queued


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_each_refused_range_is_refused_as_a_literal_and_as_a_dns_answer(address, reason):
    assert webhooks.address_refusal(ipaddress.ip_address(address)) == reason
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(webhooks.AddressRefused, match=f"a {reason} address"):
        webhooks.address_check(f"http://{literal}:8080/hook")
    shown = re.escape(str(ipaddress.ip_address(address)))
    with answering(address), pytest.raises(webhooks.AddressRefused, match=shown):
        webhooks.address_check("https://hooks.example.com/hook")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert webhooks.address_refusal(ipaddress.ip_address(address)) is None
    with answering(address):
        target = webhooks.address_check("https://hooks.example.com:8443/in?x=1")

    assert target == webhooks.Target(
        "https", "hooks.example.com", 8443, ipaddress.ip_address(address), "/in?x=1"
    )


def test_a_name_with_one_private_answer_among_public_ones_is_refused():
    with answering("93.184.216.34", "10.0.0.7"), pytest.raises(webhooks.AddressRefused):
        webhooks.address_check("https://hooks.example.com/")


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.com/", "file:///etc/passwd", "javascript:alert(1)", "http:///x"]
)
def test_only_http_and_https_urls_with_a_host(url):
    with answering("93.184.216.34"), pytest.raises(webhooks.AddressRefused):
        webhooks.address_check(url)


@pytest.mark.django_db
def test_a_dns_answer_that_changes_after_the_save_is_refused_at_the_attempt():
    project = ProjectFactory()
    with answering("93.184.216.34"):  # at the save: public
        webhook = webhooks.webhook_create(
            actor=project.owner, project_id=project.pk, url="https://hooks.example.com/h"
        )
    services.task_create(actor=project.owner, project=project, title="t", due_date=timezone.now())
    [delivery] = WebhookDelivery.objects.filter(webhook=webhook)

    sending = mock.patch.object(aiohttp.BaseConnector, "connect")
    with answering("10.0.0.7") as resolve, sending as send:
        assert deliver([delivery.pk], claim="test") == {"claimed": 1, "succeeded": 0}

    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert "resolves to 10.0.0.7, a private address" in delivery.error
    assert delivery.response_status is None
    resolve.assert_called_once_with("hooks.example.com", 443)
    send.assert_not_called()  # never connected


@pytest.mark.django_db
def test_the_attempt_connects_to_the_address_it_checked_with_the_name_as_host(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the receiver is on 127.0.0.1
    receiver = start_receiver()
    project = ProjectFactory()
    url = f"http://hooks.example.test:{receiver.port}/hook"  # a name no DNS knows
    with answering("127.0.0.1"):
        webhook = webhooks.webhook_create(actor=project.owner, project_id=project.pk, url=url)
    services.task_create(actor=project.owner, project=project, title="t", due_date=timezone.now())
    [delivery] = WebhookDelivery.objects.filter(webhook=webhook)

    try:
        with answering("127.0.0.1") as resolve:
            assert deliver([delivery.pk], claim="test") == {"claimed": 1, "succeeded": 1}
        [request] = receiver.received
    finally:
        receiver.close()

    assert resolve.call_count == 1  # one look-up, and the connection went to its answer
    assert request.headers["host"] == f"hooks.example.test:{receiver.port}"
    standard_webhooks_verify(Webhook.objects.get().secret, request.headers, request.body)
    assert deliver([delivery.pk], claim="test") == {"claimed": 0}  # done: never sent again


@pytest.mark.django_db
def test_a_messages_look_ups_run_at_once_not_a_few_at_a_time():
    # Every worker thread's attempts share the process's loop, and its look-ups its threads:
    # enough of them for a message's look-ups at once, so names slow to resolve (here each
    # answers only once all are asked) do not hold up the others.
    project = ProjectFactory()
    count = 20
    with answering("93.184.216.34"):
        for i in range(count):
            url = f"https://h{i}.example.com/hook"
            webhooks.webhook_create(actor=project.owner, project_id=project.pk, url=url)
    services.task_create(actor=project.owner, project=project, title="t", due_date=timezone.now())
    ids = list(WebhookDelivery.objects.values_list("pk", flat=True))
    lock, all_asked = threading.Lock(), threading.Event()
    asked: list[str] = []

    def slow(host: str, port: int) -> list[webhooks.IPAddress]:
        with lock:
            asked.append(host)
            if len(asked) == count:
                all_asked.set()
        all_asked.wait(timeout=5)
        return [ipaddress.ip_address("10.0.0.7")]  # refused: nothing is connected to

    with mock.patch("common.domain.webhooks.resolve", side_effect=slow):
        assert deliver(ids, claim="test") == {"claimed": count, "succeeded": 0}

    assert all_asked.is_set()
    errors = set(WebhookDelivery.objects.values_list("error", flat=True))
    assert len(errors) == count
    assert all("resolves to 10.0.0.7, a private address" in error for error in errors)


def certificate_for(name: str) -> tuple[ssl.SSLContext, str]:
    """(A server context holding a certificate for `name`, the PEM of the CA that signed it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def made(subject: str, issuer: str, key, signer, ca: bool):
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = made("Taskwire test CA", "Taskwire test CA", ca_key, ca_key, ca=True)
    leaf = made(name, "Taskwire test CA", key, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        chain, private = Path(folder, "chain.pem"), Path(folder, "key.pem")
        chain.write_bytes(leaf.public_bytes(pem))
        private.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        server.load_cert_chain(chain, private)
    return server, ca.public_bytes(pem).decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("certified", "delivered"), [("hooks.example.test", True), ("other.test", False)]
)
def test_https_connects_to_the_checked_address_and_verifies_the_urls_name(
    settings, monkeypatch, certified, delivered
):
    """TLS to the address the check returned, with the URL's name as the server name it sends
    and the name the certificate must carry: a certificate for another name is refused."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the receiver is on 127.0.0.1
    server_tls, ca = certificate_for(certified)
    names: list[str | None] = []
    server_tls.sni_callback = lambda sock, name, context: names.append(name)
    receiver = start_receiver(tls=server_tls)
    sender = webhook_sender.Sender()  # a process's own, trusting the test's CA
    sender.tls.load_verify_locations(cadata=ca)
    monkeypatch.setattr(webhook_sender, "_process_sender", sender)
    project = ProjectFactory()
    url = f"https://hooks.example.test:{receiver.port}/hook"  # a name no DNS knows
    with answering("127.0.0.1"):
        webhooks.webhook_create(actor=project.owner, project_id=project.pk, url=url)
    services.task_create(actor=project.owner, project=project, title="t", due_date=timezone.now())
    [delivery] = WebhookDelivery.objects.all()

    try:
        with answering("127.0.0.1"):
            outcome = deliver([delivery.pk], claim="test")
    finally:
        receiver.close()
        sender.close()

    assert names == ["hooks.example.test"]  # SNI: the URL's name, not the address
    delivery.refresh_from_db()
    if delivered:
        assert outcome == {"claimed": 1, "succeeded": 1}
        [request] = receiver.received
        assert request.headers["host"] == f"hooks.example.test:{receiver.port}"
    else:
        assert outcome == {"claimed": 1, "succeeded": 0}
        assert delivery.error.startswith("Could not connect")
        assert "certificate" in delivery.error
        assert receiver.received == []
