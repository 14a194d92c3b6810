"""`Idempotency-Key` on POST: a retried create answers the first answer again, and writes nothing.

A POST that carries the header runs in one transaction that also holds the key (a PostgreSQL
advisory lock of the user and key, released when the transaction ends) and, when the answer is
a success, records it (domain.models.IdempotencyRecord: status, body, Content-Type, Location,
ETag). So for 24 hours, per user:

- the same key with the same request (method, path and JSON body) answers the recorded answer
  again, byte for byte, with `Idempotent-Replayed: true`, without calling the service: no second
  row, event or email;
- the same key with another request is 422;
- the same key while its first request is still running (its lock held) is 409 with Retry-After;
- a first request that failed (an error answer, or an exception that rolled its write back)
  records nothing, because nothing of it committed: its retry runs again, as a first request.

The record is written in the write's own transaction: a write that rolled back leaves no record
to replay, and a record always stands for a write that committed. Another user's key is another
key. A POST without the header costs one dictionary lookup. Under SQLite (the embedded local
run), whose transactions take the database's write lock up front, a duplicate waits for the
first to finish and gets its answer instead of a 409.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError

from common.domain.models import IdempotencyRecord

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 255
TTL = timedelta(hours=24)
REPLAYED_HEADER = "Idempotent-Replayed"
IN_FLIGHT_RETRY_AFTER_SECONDS = 1
# The headers of an answer that its replay repeats (besides the status and body).
_RECORDED_HEADERS = ("Content-Type", "Location", "ETag")


class KeyInFlight(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is still in progress; retry shortly."
    default_code = "idempotency_key_in_flight"
    wait = IN_FLIGHT_RETRY_AFTER_SECONDS  # DRF's handler sends it as Retry-After


class KeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request."
    default_code = "idempotency_key_reused"


def valid_key(raw: str) -> str:
    """The key, or a 400: 1 to 255 printable ASCII characters."""
    if not 0 < len(raw) <= KEY_MAX_LENGTH or not all(" " <= char <= "~" for char in raw):
        raise ValidationError(
            {"detail": f"{HEADER} must be 1 to {KEY_MAX_LENGTH} printable ASCII characters."}
        )
    return raw


def fingerprint(request) -> str:
    """The request a key stands for: its method, path and body (as JSON, key order aside)."""
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    what = f"{request.method} {request.get_full_path()}\n{body}"
    return hashlib.sha256(what.encode("utf-8", "surrogatepass")).hexdigest()


def idempotent(request, key: str, answer: Callable[[], HttpResponse], finalize) -> HttpResponse:
    """`answer()` once per user and key; its recorded answer for the same request afterwards.

    `finalize(response)` renders a view's answer as the client gets it (DRF's
    finalize_response), so the record holds those exact bytes and headers.
    """
    user_id = request.user.pk
    digest = fingerprint(request)
    with transaction.atomic():
        if not _hold(user_id, key):
            raise KeyInFlight()
        now = timezone.now()
        records = IdempotencyRecord.objects.filter(user_id=user_id, key=key)
        record = records.filter(created_at__gt=now - TTL).first()
        if record is not None:
            if record.fingerprint != digest:
                raise KeyReused()
            return _replay(record)
        response = answer()  # raises, and rolls back, when the write fails
        if not status.is_success(response.status_code):
            return response  # nothing committed worth replaying: a retry runs again
        response = finalize(response)
        response.render()
        # This key's expired record, if any, and the user's others, go now.
        IdempotencyRecord.objects.filter(user_id=user_id, created_at__lte=now - TTL).delete()
        IdempotencyRecord.objects.create(
            user_id=user_id,
            key=key,
            fingerprint=digest,
            status=response.status_code,
            headers={name: response[name] for name in _RECORDED_HEADERS if name in response},
            body=response.content,
            created_at=now,
        )
    return response


def _hold(user_id: int, key: str) -> bool:
    """Take the key for this transaction; False while another transaction holds it."""
    if connection.vendor != "postgresql":
        return True  # SQLite's transactions run one at a time: a duplicate waits its turn
    digest = hashlib.blake2b(f"idempotency:{user_id}:{key}".encode(), digest_size=8).digest()
    lock = int.from_bytes(digest, signed=True)  # 64 bits: another key's lock never collides
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [lock])
        return bool(cursor.fetchone()[0])


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.body), status=record.status)
    for name, value in record.headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


if TYPE_CHECKING:  # what the mixin is mixed into, for the type checker
    from rest_framework.generics import GenericAPIView as _View
else:
    _View = object


class IdempotentPostMixin(_View):
    """For every view that answers POST for a signed-in user: honour `Idempotency-Key`."""

    def post(self, request, *args, **kwargs):
        raw = request.META.get("HTTP_IDEMPOTENCY_KEY")
        if raw is None:
            return super().post(request, *args, **kwargs)
        return idempotent(
            request,
            valid_key(raw.strip()),
            lambda: super(IdempotentPostMixin, self).post(request, *args, **kwargs),
            lambda response: self.finalize_response(self.request, response, *args, **kwargs),
        )
