"""OpenAPI generation: drf-spectacular, plus the error answers every operation can give.

The committed docs/openapi.yaml is generated from this; a test fails when the two drift apart.
"""

from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class JWTScheme(SimpleJWTScheme):
    """Documents common.api.authentication's JWT subclass as the bearer scheme it is."""

    target_class = "common.api.authentication.JWTAuthentication"


class ErrorDetail(serializers.Serializer):
    """The body of every error but field validation."""

    detail = serializers.CharField()


_FIELD_ERRORS = {
    "type": "object",
    "description": 'Field errors, `{"field": ["message", ...]}`, or `{"detail": "message"}`.',
    "additionalProperties": {
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
    },
}


def error_response(description: str, schema: dict | type = ErrorDetail) -> OpenApiResponse:
    return OpenApiResponse(response=schema, description=description)


_HEADER = OpenApiParameter.HEADER
_RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
_ETAG = {
    "schema": {"type": "string"},
    "description": "The answer's strong entity tag, for If-None-Match and If-Match.",
}


class AutoSchema(openapi.AutoSchema):
    """Documents 400, 401, 403, 404, 413, 415, 429 and 503 wherever the operation can answer them,
    and the conditional (ETag: 304, 412) and idempotent (409, 422) answers of the views that
    give them, with their request and answer headers.

    403 comes from the view's declared access (`operations`, common.domain.access). A view names any
    other error it answers in `documented_errors` (`{"401": "why"}`), or for one method only
    in `documented_method_errors` (`{"DELETE": {"400": "why"}}`).
    """

    def _tagged(self) -> bool:
        """Whether this operation's answers carry an ETag (and its GET a 304)."""
        from common.api.conditional import ConditionalMixin

        if self.method == "GET":
            return isinstance(self.view, ConditionalMixin) or hasattr(self.view, "cache_resource")
        return isinstance(self.view, ConditionalMixin) and self.method != "DELETE"

    def _conditional_write(self) -> bool:
        from common.api.conditional import ConditionalMixin

        return isinstance(self.view, ConditionalMixin) and self.method in ("PUT", "PATCH", "DELETE")

    def _idempotent(self) -> bool:
        from common.api.idempotency import IdempotentPostMixin

        return isinstance(self.view, IdempotentPostMixin) and self.method == "POST"

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "GET" and self._tagged():
            parameters.append(
                OpenApiParameter(
                    "If-None-Match",
                    OpenApiTypes.STR,
                    _HEADER,
                    description="ETags the client holds: 304, without a body, when one is current.",
                )
            )
        if self._conditional_write():
            parameters.append(
                OpenApiParameter(
                    "If-Match",
                    OpenApiTypes.STR,
                    _HEADER,
                    description=(
                        "Apply only if the resource's ETag is still one of these (or `*`), "
                        "checked under the write's row lock; else 412 and nothing changes."
                    ),
                )
            )
        if self._idempotent():
            parameters.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    OpenApiTypes.STR,
                    _HEADER,
                    description=(
                        "1 to 255 printable ASCII characters. The same key from the same user "
                        "within 24 h answers the first successful answer again (status, body, "
                        "Location, ETag; `Idempotent-Replayed: true`) without writing again; "
                        "with another body 422, while the first still runs 409. A failed "
                        "first request is not recorded: its retry runs anew."
                    ),
                )
            )
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses

    def _get_response_headers_for_code(self, status_code, direction="response"):
        headers = super()._get_response_headers_for_code(status_code, direction)
        if status_code == "200" and self.method == "GET" and hasattr(self.view, "cache_resource"):
            headers["X-Cache"] = {
                "schema": {"type": "string", "enum": ["hit", "miss"]},
                "description": "Whether the page came from the cache.",
            }
        if status_code in ("200", "201", "304") and self._tagged():
            headers["ETag"] = _ETAG
        if status_code == "304" and hasattr(self.view, "cache_resource"):
            headers["X-Cache"] = {
                "schema": {"type": "string", "enum": ["hit", "miss"]},
                "description": "Whether the page came from the cache.",
            }
        if status_code == "201" and hasattr(self.view, "location_view"):
            headers["Location"] = {
                "schema": {"type": "string", "format": "uri"},
                "description": "The URL of the new resource.",
            }
        if status_code == "201" and self._idempotent():
            headers["Idempotent-Replayed"] = {
                "schema": {"type": "string", "enum": ["true"]},
                "description": "Present on the replay of an earlier answer (Idempotency-Key).",
            }
        if status_code in ("409", "429", "503"):
            headers["Retry-After"] = _RETRY_AFTER
        return headers

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        errors: dict[str, OpenApiResponse] = {}
        has_body = self.method in ("POST", "PUT", "PATCH")
        if has_body or self.get_filter_backends():
            errors["400"] = error_response("Malformed JSON or an invalid value.", _FIELD_ERRORS)
        if not any(
            isinstance(p, type) and issubclass(p, AllowAny) for p in self.view.permission_classes
        ):
            errors["401"] = error_response("Missing, bad or expired bearer token.")
        if "{" in self.path or self._is_list_view():
            errors["404"] = error_response("Unknown id in the path, or a page past the end.")
        if has_body:
            errors["413"] = error_response("Request body over 1 MiB.")
            errors["415"] = error_response("Content-Type is not application/json.")
        # Every operation may meet a database that cannot serve it in time (common.api.middleware).
        errors["503"] = error_response("The database is busy or unavailable; retry shortly.")
        if self._write_limited():
            errors["429"] = error_response("Over API_WRITE_RATE writes in 60 seconds; retry later.")
        if self._may_be_forbidden():
            errors["403"] = error_response("Your role in the project does not allow this.")
        if self.method == "GET" and self._tagged():
            errors["304"] = OpenApiResponse(
                description="Not modified: If-None-Match names the current ETag. No body."
            )
        if self._conditional_write():
            errors["412"] = error_response(
                "If-Match names no current ETag: the resource changed since; nothing changed."
            )
        if self._idempotent():
            errors["400"] = error_response(
                "Malformed JSON, an invalid value, or an Idempotency-Key that is not 1 to 255 "
                "printable ASCII characters.",
                _FIELD_ERRORS,
            )
            errors["409"] = error_response(
                "A request with this Idempotency-Key is still in progress; retry shortly."
            )
            errors["422"] = error_response(
                "This Idempotency-Key was already used with a different request."
            )
        method_errors = getattr(self.view, "documented_method_errors", {}).get(self.method, {})
        for code, description in {
            **getattr(self.view, "documented_errors", {}),
            **method_errors,
        }.items():
            errors[code] = error_response(description)
        return errors

    def _write_limited(self) -> bool:
        """A write by an authenticated caller counts against the write limit (common.api.limits)."""
        from common.api.limits import WriteRateLimit

        return (
            self.method in ("POST", "PUT", "PATCH", "DELETE")
            and bool(self.view.authentication_classes)
            and any(issubclass(t, WriteRateLimit) for t in self.view.throttle_classes)
        )

    def _may_be_forbidden(self) -> bool:
        """A view's declared access (domain.access) says whether its role check can refuse."""
        from common.domain.access import MAY_BE_FORBIDDEN

        operation = getattr(self.view, "operations", {}).get(self.method)
        return operation in MAY_BE_FORBIDDEN


# The functions' view extensions register when imported: here, with the generator, never at a
# function's start.
import functions.projects.schema  # noqa: E402, F401
