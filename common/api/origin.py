"""What Django says about where an ASGI request came from, for answers made in front of Django.

The scheme and host a page's links start with (Django's build_absolute_uri, which refuses a host
ALLOWED_HOSTS does not name) and the security headers Django's SecurityMiddleware adds (HSTS only
on a secure request). Both depend only on a few headers and the settings, so Django is asked
once per distinct origin, not once per request; a changed setting (in tests) asks again.
"""

import functools
import io
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.core.signals import setting_changed
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware

Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class Origin:
    scheme_host: str | None  # `https://api.example.com`; None for a host Django refuses
    security_headers: Headers


def request_origin(scope: dict) -> Origin:
    names = _origin_header_names()
    headers = tuple((name, value) for name, value in scope.get("headers", ()) if name in names)
    server = tuple(scope["server"]) if scope.get("server") else None
    return _origin(scope.get("scheme", "http"), server, headers)


@functools.lru_cache(maxsize=256)  # bounded: a client may send any Host
def _origin(scheme: str, server: tuple | None, headers: Headers) -> Origin:
    scope = {"type": "http", "method": "GET", "path": "/", "scheme": scheme, "headers": headers}
    request = ASGIRequest({**scope, "server": server}, io.BytesIO())
    try:
        scheme_host = request.build_absolute_uri("/").removesuffix("/")
    except DisallowedHost:
        scheme_host = None
    response = SecurityMiddleware(_no_view).process_response(request, HttpResponse())
    security = tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.items()
        if name.lower() != "content-type"
    )
    return Origin(scheme_host, security)


@functools.cache
def _origin_header_names() -> frozenset[bytes]:
    """The request headers Django reads for the scheme, host and port."""
    names = {"host", "x-forwarded-host", "x-forwarded-port"}
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name = settings.SECURE_PROXY_SSL_HEADER[0]
        names.add(meta_name.removeprefix("HTTP_").lower().replace("_", "-"))
    return frozenset(name.encode("latin-1") for name in names)


def _no_view(request):
    raise AssertionError("the middleware is only asked for its headers")


def _forget(**kwargs) -> None:
    _origin.cache_clear()
    _origin_header_names.cache_clear()


setting_changed.connect(_forget, dispatch_uid="common.api.origin.forget")
