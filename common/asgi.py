"""The ASGI application of one function: Django, serving only that function's urlconf.

Every function shares the settings; the urlconf is chosen per application, so several functions
can also live in one process (the local gateway) without seeing each other's paths.
"""

import os
from importlib import import_module

import django
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse


class FunctionHandler(ASGIHandler):
    """Django's ASGI handler, routing every request through one urlconf."""

    def __init__(self, urlconf: str) -> None:
        super().__init__()
        self.urlconf = urlconf
        import_module(urlconf)  # load the routes and views at init, not on the first request

    async def get_response_async(self, request: HttpRequest) -> HttpResponse:
        request.urlconf = self.urlconf
        return await super().get_response_async(request)


def function_application(urlconf: str, *, cached_lists: tuple[str, ...] = ()):
    """The function's ASGI app; with Redis, cached list pages are answered before Django."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "common.settings")
    django.setup(set_prefix=False)
    from django.conf import settings

    app = FunctionHandler(urlconf)
    if cached_lists and settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        from common.cache_asgi import CachedListFrontend

        return CachedListFrontend(app, cached_lists)
    return app
