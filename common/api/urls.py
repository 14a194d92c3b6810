"""Routes every function serves besides its own (liveness, readiness), and the error handlers.

Django reads handler400/404/500 from the root urlconf: every function's urlconf imports these.
"""

from django.urls import path

from common.api import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

handler400 = "common.api.errors.bad_request"
handler404 = "common.api.errors.not_found"
handler500 = "common.api.errors.server_error"
