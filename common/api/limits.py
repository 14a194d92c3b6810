"""The API's limits (CONTRACT section 1, "Concurrency, retries and limits"), as HTTP.

- Logins: 5 failed attempts per username in any 15 minutes, 30 per client address in any
  minute; past either, every attempt is 429 with Retry-After until a place frees, a right
  password included. A place is taken before the password is checked (so concurrent guesses
  cannot slip past the count) and given back when it was right. Redis down: logins are refused
  with 503 (fail closed): the count is the only thing between a list of passwords and an
  account, and signed-in clients go on refreshing their tokens meanwhile.
- Writes: API_WRITE_RATE per user in any 60 seconds, then 429 with Retry-After. Reads are never
  counted (the list cache's hit path in front of Django never comes here). Redis down: writes go
  on uncounted (fail open), as the contract keeps writes working without Redis; the limits'
  Redis is then left alone for a few seconds, so each write does not wait for its timeout.

The client address is the connection's, or with TRUSTED_PROXY_COUNT proxies in front, the one
the outermost of them saw: that many entries from the right of X-Forwarded-For.
"""

import contextlib
import hashlib
import logging
import time
from collections.abc import Iterator

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, AuthenticationFailed, Throttled
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from common.infra.limits import Limit, LimitsDown, limits

logger = logging.getLogger("common.api.limits")

LOGIN_USER_LIMIT, LOGIN_USER_WINDOW = 5, 15 * 60
LOGIN_ADDRESS_LIMIT, LOGIN_ADDRESS_WINDOW = 30, 60
WRITE_WINDOW = 60
SKIP_AFTER_ERROR_SECONDS = 5.0


class LoginsUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Sign-in is unavailable for a moment; retry shortly."
    default_code = "logins_unavailable"
    wait = 5  # DRF's handler sends it as Retry-After


def client_address(request) -> str:
    """The client's address as the gateway saw it (TRUSTED_PROXY_COUNT, module doc)."""
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        hops = [hop.strip() for hop in forwarded if hop.strip()]
        if hops:
            return hops[-count] if len(hops) >= count else hops[0]
    return request.META.get("REMOTE_ADDR") or "unknown"


def _digest(text: str) -> str:
    """A bounded key part for any text a client sends."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@contextlib.contextmanager
def login_attempt(request, username: str) -> Iterator[None]:
    """Around checking a password: refuses (429, 503) before it, counts it when it fails (401)."""
    wanted = [
        Limit(f"login-user:{_digest(username)}", LOGIN_USER_LIMIT, LOGIN_USER_WINDOW),
        Limit(f"login-addr:{_digest(client_address(request))}", LOGIN_ADDRESS_LIMIT,
              LOGIN_ADDRESS_WINDOW),
    ]  # fmt: skip
    store = limits()
    try:
        place = store.acquire(wanted)
    except LimitsDown as exc:
        logger.error("limits: Redis unavailable, refusing sign-in: %s", exc.__cause__)
        raise LoginsUnavailable from exc
    if place.refused:
        raise Throttled(wait=place.retry_after)
    failed = False
    try:
        yield
    except AuthenticationFailed:
        failed = True  # the place stays taken: one failed attempt
        raise
    finally:
        if not failed:
            with contextlib.suppress(LimitsDown):  # it lapses with its window
                store.release(place)


class WriteRateLimit(BaseThrottle):
    """API_WRITE_RATE writes per user in any 60 seconds (module doc); reads pass untouched."""

    skip_until = 0.0  # monotonic: the limits' Redis failed lately, writes go uncounted

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS or not request.user.is_authenticated:
            return True
        if time.monotonic() < WriteRateLimit.skip_until:
            return True
        try:
            place = limits().acquire(
                [Limit(f"write:{request.user.pk}", settings.API_WRITE_RATE, WRITE_WINDOW)]
            )
        except LimitsDown as exc:
            WriteRateLimit.skip_until = time.monotonic() + SKIP_AFTER_ERROR_SECONDS
            logger.warning("limits: Redis unavailable, writes uncounted: %s", exc.__cause__)
            return True
        self.retry_after = place.retry_after
        return not place.refused

    def wait(self) -> float | None:
        return self.retry_after
