"""OpenAPI generation: drf-spectacular, plus the error answers every operation can give.

The committed docs/openapi.yaml is generated from this; a test fails when the two drift apart.
"""

from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import OpenApiResponse
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


class AutoSchema(openapi.AutoSchema):
    """Documents 400, 401, 403, 404, 413, 415, 429 and 503 wherever the operation can answer them.

    403 comes from the view's declared access (`operations`, common.domain.access). A view names any
    other error it answers in `documented_errors` (`{"401": "why"}`), or for one method only
    in `documented_method_errors` (`{"DELETE": {"400": "why"}}`).
    """

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
        if status_code in ("429", "503"):
            headers["Retry-After"] = {
                "schema": {"type": "integer"},
                "description": "Seconds to wait before retrying.",
            }
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
