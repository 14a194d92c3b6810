"""Webhooks: a project's events POSTed to URLs of its admins' choosing (CONTRACT section 6).

The writes (create, change, delete, redeliver) are here, each in one transaction, and the
outbox: `deliveries_log` runs inside `common.domain.events.publish`, so each event a webhook
asks for becomes a pending delivery in the event's own transaction; after commit the one
after-commit step (common.domain.effects) hands them to the workers (scheduled.webhooks), and a
relay picks up any that never reached them. Sending, signing and retrying are scheduled.webhooks'.

Addresses (`address_check`): a URL is http or https, and outside local mode
(WEBHOOK_ALLOW_PRIVATE_NETWORKS) its host must resolve to public addresses only. The check runs
when a webhook is saved and again before every attempt, whose connection goes to the address
that check returned (no second look-up).
"""

import base64
import functools
import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from common.domain import effects
from common.domain.access import Operation, access_require
from common.domain.models import Event, Project, Webhook, WebhookDelivery

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 24
ALL_EVENTS = "*"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not public, though some Python versions' `is_global` says otherwise (IANA's special-purpose
# registries): IETF protocol assignments, and IPv6 site-local.
_SPECIAL = tuple(
    ipaddress.ip_network(net) for net in ("192.0.0.0/24", "2001::/23", "fec0::/10", "100::/64")
)


class AddressRefused(ValueError):
    """The URL may not be called: not http(s), no host, unresolvable, or not public."""


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,` and base64 of HMAC-SHA256 over
    `{id}.{timestamp}.{body}`, keyed by the secret's bytes (Standard Webhooks)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@functools.lru_cache(maxsize=1024)
def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


# Addresses -------------------------------------------------------------------------------------


def address_refusal(ip: IPAddress) -> str | None:
    """Why a connection to `ip` is refused (None: it is public). An IPv6 address that carries an
    IPv4 one (mapped, 6to4, NAT64) is judged by the IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded)
    for reason, refused in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("special-purpose", any(ip in net for net in _SPECIAL if net.version == ip.version)),
        ("not public", not ip.is_global),
    ):
        if refused:
            return reason
    return None


def is_literal(host: str) -> bool:
    """Whether `host` is an address already, which needs no look-up."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (the one look-up of a check; tests may replace it)."""
    if is_literal(host):
        return [ipaddress.ip_address(host)]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """Where an attempt connects: the checked address, and the name it speaks to there."""

    scheme: str
    host: str  # the URL's host name (Host header, TLS server name)
    port: int
    address: IPAddress
    path: str  # path and query


def address_check(url: str) -> Target:
    """The address to connect to for `url`, or AddressRefused (saying why)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("The URL must be http or https.")
    if not parts.hostname:
        raise AddressRefused("The URL has no host.")
    if parts.username or parts.password:
        raise AddressRefused("The URL may not carry credentials.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressRefused("The URL's port is not a number from 0 to 65535.") from None
    try:
        addresses = resolve(parts.hostname, port)
    except (OSError, UnicodeError, ValueError):
        raise AddressRefused(f"The host {parts.hostname} does not resolve.") from None
    if not addresses:
        raise AddressRefused(f"The host {parts.hostname} does not resolve.")
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                raise AddressRefused(
                    f"The host {parts.hostname} resolves to {address}, a {reason} address: "
                    "only public addresses are allowed."
                )
    path = parts.path or "/"
    return Target(
        parts.scheme,
        parts.hostname,
        port,
        addresses[0],
        f"{path}?{parts.query}" if parts.query else path,
    )


# Writes -----------------------------------------------------------------------------------------


def _events_valid(events: Sequence[str]) -> list[str]:
    from common.domain.events import EventType

    known = {str(type) for type in EventType}
    unknown = [name for name in events if name != ALL_EVENTS and name not in known]
    if unknown:
        raise ValidationError({"events": [f"Unknown event type: {', '.join(unknown)}."]})
    return list(dict.fromkeys(events)) or [ALL_EVENTS]


def _url_valid(url: str) -> str:
    try:
        address_check(url)
    except AddressRefused as exc:
        raise ValidationError({"url": [str(exc)]}) from None
    return url


def _project_locked(actor: Any, project_id: int) -> None:
    # The project's row lock, as every write of the project takes: a role changed meanwhile
    # is seen; then the role check again, under it.
    if not Project.objects.select_for_update(no_key=True).filter(pk=project_id).exists():
        raise Project.DoesNotExist(f"project {project_id} is gone")
    access_require(user=actor, project_id=project_id, operation=Operation.MANAGE_WEBHOOKS)


def webhook_create(
    *, actor: Any, project_id: int, url: str, events: Sequence[str] = (ALL_EVENTS,), active=True
) -> Webhook:
    """A new webhook; its `secret` is in the returned instance, and nowhere readable later."""
    events, url = _events_valid(events), _url_valid(url)  # the look-up before any lock
    with transaction.atomic():
        _project_locked(actor, project_id)
        return Webhook.objects.create(
            project_id=project_id, url=url, events=events, active=active, secret=secret_new()
        )


def webhook_update(*, actor: Any, webhook: Webhook, **changes: Any) -> Webhook:
    """Change `url`, `events` or `active`; turning it on again clears why it was turned off."""
    if "events" in changes:
        changes["events"] = _events_valid(changes["events"])
    if "url" in changes:
        changes["url"] = _url_valid(changes["url"])
    with transaction.atomic():
        _project_locked(actor, webhook.project_id)
        webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
        for field, value in changes.items():
            setattr(webhook, field, value)
        if changes.get("active"):
            webhook.disabled_reason = ""
        webhook.save()
        return webhook


def webhook_delete(*, actor: Any, webhook: Webhook) -> None:
    """Delete the webhook and its delivery log; its pending deliveries go with it."""
    with transaction.atomic():
        _project_locked(actor, webhook.project_id)
        Webhook.objects.filter(pk=webhook.pk).delete()


class EventGone(LookupError):
    """The delivery's event is no longer in the log (past EVENT_RETENTION_DAYS)."""


class WebhookInactive(ValueError):
    pass


def delivery_redeliver(*, actor: Any, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the delivery's event again: a new attempt 1, with retries of its own."""
    with transaction.atomic():
        _project_locked(actor, delivery.webhook.project_id)
        webhook = Webhook.objects.get(pk=delivery.webhook_id)
        if not webhook.active:
            raise WebhookInactive("The webhook is not active: turn it on first.")
        if not Event.objects.filter(pk=delivery.event_id).exists():
            raise EventGone("The event is no longer kept.")
        now = timezone.now()
        again = WebhookDelivery.objects.create(
            webhook=webhook, event_id=delivery.event_id, attempt=1, due_at=now, queued_at=now
        )
        effects.on_commit(deliveries=[again.pk])
        return again


# The outbox -------------------------------------------------------------------------------------


def deliveries_log(events: Sequence[Event]) -> list[int]:
    """Make the pending deliveries of `events` in the current transaction; their ids. (On
    PostgreSQL common.domain.events logs them in the events' own statement, the same way.)

    They are marked queued, as the after-commit step will queue them; when it cannot, it marks
    them unqueued again, for the relay (and if the process dies in between, the relay takes
    them once they have been "queued" for scheduled.webhooks.REQUEUE_AFTER)."""
    if not events:
        return []
    now = timezone.now()
    hooks = Webhook.objects.filter(project_id__in={e.project_id for e in events}, active=True)
    by_project: dict[int, list[Webhook]] = {}
    for hook in hooks.only("id", "project_id", "events"):
        by_project.setdefault(hook.project_id, []).append(hook)
    made = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(webhook=hook, event_id=event.id, attempt=1, due_at=now, queued_at=now)
        for event in events
        for hook in by_project.get(event.project_id, ())
        if ALL_EVENTS in hook.events or event.type in hook.events
    )
    return [delivery.pk for delivery in made]
