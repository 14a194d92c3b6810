"""The reference of bench.cold_start: the least Django + DRF + Mangum function for GET /healthz.

Settings are configured in code with only the apps DRF's APIView needs (contenttypes and auth for
its anonymous user, rest_framework), no middleware, no database, JSON rendering only; the module
is its own urlconf. The import order follows a Taskwire function: configure, set up, route, wrap.
"""
# Django must be configured before DRF and the views are imported, hence the late imports.
# ruff: noqa: E402

from django.conf import settings

HOST = "abcdef1234.execute-api.eu-west-1.amazonaws.com"

settings.configure(
    SECRET_KEY="reference-function-not-a-secret",
    ALLOWED_HOSTS=[HOST],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    MIDDLEWARE=[],
    USE_I18N=False,
    REST_FRAMEWORK={"DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]},
)

import django

django.setup(set_prefix=False)

from django.core.asgi import get_asgi_application
from django.urls import path
from mangum import Mangum
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class Health(APIView):
    """Liveness, answered by DRF with its default authentication and permission classes."""

    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


urlpatterns = [path("healthz", Health.as_view())]

application = get_asgi_application()
handler = Mangum(application, lifespan="off")
