"""The ASGI application of one function: Django, serving only that function's urlconf.

Every function shares the settings; the urlconf is chosen per application, so several functions
can also live in one process (the local gateway) without seeing each other's paths.
"""

import json
import os
import tempfile
from importlib import import_module

import django
from django.conf import settings
from django.core.exceptions import RequestAborted, RequestDataTooBig
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse


class FunctionHandler(ASGIHandler):
    """Django's ASGI handler, routing every request through one urlconf.

    It also bounds the body as it arrives: over DATA_UPLOAD_MAX_MEMORY_SIZE answers 413 whether
    or not the client declared a Content-Length, and a chunked body gets its length declared so
    the parsers read it.
    """

    def __init__(self, urlconf: str) -> None:
        super().__init__()
        self.urlconf = urlconf
        import_module(urlconf)  # load the routes and views at init, not on the first request

    async def handle(self, scope, receive, send) -> None:
        try:
            await super().handle(scope, receive, send)
        except RequestDataTooBig:
            await _send_json(send, 413, {"detail": _too_big()})

    async def read_body(self, receive):
        body_file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (handed on to the request)
            max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
        )
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_file.close()
                raise RequestAborted()
            size += len(message.get("body", b""))
            if size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                body_file.close()
                raise RequestDataTooBig(_too_big())
            body_file.write(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body_file.seek(0)
        return body_file

    def create_request(self, scope, body_file):
        request, error = super().create_request(scope, body_file)
        if request is not None and "CONTENT_LENGTH" not in request.META:
            request.META["CONTENT_LENGTH"] = str(body_file.seek(0, os.SEEK_END))
            body_file.seek(0)
        return request, error

    async def get_response_async(self, request: HttpRequest) -> HttpResponse:
        request.urlconf = self.urlconf
        return await super().get_response_async(request)


def _too_big() -> str:
    return f"Request body over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


async def _send_json(send, status: int, body: dict) -> None:
    content = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def function_application(urlconf: str, *, cached_lists: tuple[str, ...] = ()):
    """The function's ASGI app; with Redis, cached list pages are answered before Django."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.settings")
    django.setup(set_prefix=False)
    app = FunctionHandler(urlconf)
    if cached_lists and settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        from common.cache.frontend import CachedListFrontend

        return CachedListFrontend(app, cached_lists)
    return app
