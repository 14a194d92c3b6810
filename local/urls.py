"""Every function's API in one urlconf, plus what local runs alone serve: the interactive docs,
the SES mock's outbox, running a job now, and the page at `/`."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from common.api.urls import handler400, handler404, handler500  # noqa: F401 (read from the root urlconf)
from functions.auth.urls import urlpatterns as auth_urls
from functions.comments.urls import urlpatterns as comments_urls
from functions.projects.urls import urlpatterns as projects_urls
from functions.tasks.urls import urlpatterns as tasks_urls
from local import page
from local.views import JobView, OutboxView


class DocsView(SpectacularSwaggerView):
    """The Swagger page, for browsers: GET only (its HTML renderer has nothing for OPTIONS)."""

    http_method_names = ["get", "head"]


def _api_routes(patterns: list) -> list:
    """A function's own routes, without the health routes every function includes."""
    return [pattern for pattern in patterns if getattr(pattern, "name", None)]


urlpatterns = [
    *_api_routes(projects_urls),
    *_api_routes(tasks_urls),
    *_api_routes(comments_urls),
    *_api_routes(auth_urls),
    path("schema/", SpectacularAPIView.as_view(urlconf="local.urls"), name="schema"),
    path("docs/", DocsView.as_view(url_name="schema"), name="docs"),
    path("local/outbox/", OutboxView.as_view(), name="local-outbox"),
    path("local/jobs/<str:name>/", JobView.as_view(), name="local-job"),
    path("", page.page, name="local-page"),
    path("local/page/<str:name>", page.asset, name="local-page-asset"),
]
