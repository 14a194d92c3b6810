"""The auth function's routes. Its views are imported at the first request to one of them, not at
the function's start: they are simplejwt's, whose settings import django.test (bench cold_start;
pinned by functions/tests/test_handlers.py)."""

from functools import cached_property
from importlib import import_module

from django.urls import include, path

from common.api.urls import handler400, handler404, handler500  # noqa: F401 (read from the root urlconf)


class LazyView:
    """The view `functions.auth.views.<name>.as_view()`, made at its first use: a request, or
    an attribute of the view function asked for (`cls` by the schema generator, `view_class`
    by Django's resolver once it matched the path)."""

    def __init__(self, name: str) -> None:
        self.name = self.__name__ = self.__qualname__ = name

    @cached_property
    def view(self):
        return getattr(import_module("functions.auth.views"), self.name).as_view()

    def __call__(self, request, *args, **kwargs):
        return self.view(request, *args, **kwargs)

    def __getattr__(self, attribute: str):
        if attribute == "view":  # its import failed: say so, rather than recurse
            raise AttributeError(attribute)
        return getattr(self.view, attribute)


urlpatterns = [
    path("auth/token/", LazyView("TokenObtain"), name="token-obtain"),
    path("auth/token/refresh/", LazyView("TokenRefresh"), name="token-refresh"),
    path("auth/logout/", LazyView("Logout"), name="logout"),
    path("auth/me/", LazyView("Me"), name="me"),
    path("", include("common.api.urls")),
]
