"""The admin function's routes: Django's admin at /admin/, and the health routes."""

from django.urls import include, path

from common.api.urls import handler400, handler404, handler500  # noqa: F401 (read from the root urlconf)
from functions.admin import projects, tasks, users  # noqa: F401 (they register their models)
from functions.admin.site import site

urlpatterns = [
    path("admin/", site.urls),
    path("", include("common.api.urls")),
]
