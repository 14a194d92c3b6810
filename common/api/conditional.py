"""Conditional requests: strong ETags, `If-None-Match` (304) and `If-Match` (412).

A tag is a digest of what the client receives: of a list page, its bytes (`page_tag`); of a
project or a task, its representation's canonical JSON (`entity_tag`), so the view that answers
and the service that checks `If-Match` under the row lock compute the same tag from the same
fields without rendering. Tags are strong: two answers with one tag have the same bytes.

`If-None-Match` compares weakly (`W/"x"` matches `"x"`), `If-Match` strongly (a weak tag
matches nothing), as RFC 9110 says; `*` matches any current representation. A request without
these headers costs a dictionary lookup.
"""

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response

# Headers a 304 repeats from the answer it stands for (RFC 9110, 15.4.5).
_NOT_MODIFIED_HEADERS = ("ETag", "Vary", "X-Cache")


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The resource changed since the tag in If-Match: fetch it again."
    default_code = "precondition_failed"


def page_tag(page: bytes) -> str:
    """The strong tag of a list page's bytes."""
    return f'"{hashlib.blake2b(page, digest_size=16).hexdigest()}"'


def entity_tag(representation: Mapping[str, Any]) -> str:
    """The strong tag of a project's or task's representation (its JSON object)."""
    canonical = json.dumps(
        representation, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return page_tag(canonical.encode())


def if_match(request: HttpRequest) -> list[str] | None:
    """The tags of the request's If-Match, None without one (an unreadable one matches none)."""
    header = request.META.get("HTTP_IF_MATCH")
    return None if header is None else parse_etags(header)


def require_current(expected: list[str] | None, representation: Mapping[str, Any]) -> None:
    """PreconditionFailed unless `representation` is one of the `expected` tags (If-Match).

    The services call this under the row lock their write takes: a write that committed
    meanwhile changed the tag, so of two writes sent with the same tag only the first applies.
    """
    if expected is None or "*" in expected:
        return
    if entity_tag(representation) not in expected:  # strong comparison: W/ tags never match
        raise PreconditionFailed()


def none_match(request: HttpRequest, tag: str) -> bool:
    """Whether the request's If-None-Match names `tag` (weak comparison), i.e. a 304."""
    header = request.META.get("HTTP_IF_NONE_MATCH")
    return header is not None and none_match_header(header, tag)


def none_match_header(header: str, tag: str) -> bool:
    tags = parse_etags(header)
    return "*" in tags or tag in (each.removeprefix("W/") for each in tags)


def not_modified(response: HttpResponse) -> HttpResponseNotModified:
    """The 304 standing for `response`: its tag and Vary, no body."""
    answer = HttpResponseNotModified()
    for name in _NOT_MODIFIED_HEADERS:
        if name in response:
            answer[name] = response[name]
    return answer


if TYPE_CHECKING:  # what the mixin is mixed into, for the type checker
    from rest_framework.generics import GenericAPIView as _View
else:
    _View = object


class ConditionalMixin(_View):
    """For the views of projects and tasks: an ETag on every answer carrying one of them (GET,
    PUT, PATCH, POST), 304 to a GET whose If-None-Match names it, and `self.if_match` (the
    request's If-Match tags, for the service to check under its lock) on writes."""

    @property
    def if_match(self) -> list[str] | None:
        return if_match(self.request)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            isinstance(response, Response)
            and response.status_code in (200, 201)
            and isinstance(response.data, Mapping)
        ):
            response["ETag"] = entity_tag(response.data)
            if request.method in ("GET", "HEAD") and none_match(request, response["ETag"]):
                return not_modified(response)
        return response
