"""The OpenAPI description of the activity feed and webhook views that their own fields don't give.

drf-spectacular's view extensions, loaded with the schema generator (common.api.schema) rather
than with the function: its decorators import the generator, and with it django.test, when the
view's module is imported (pinned by functions/tests/test_handlers.py).
"""

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from functions.projects.serializers import (
    EventPageSerializer,
    EventsGoneSerializer,
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
)


class ActivityFeedSchema(OpenApiViewExtension):
    target_class = "functions.projects.webhooks.ActivityFeed"

    def view_replacement(self):
        feed = extend_schema(
            parameters=[
                OpenApiParameter("after", int, description="The last seq seen (default 0)."),
                OpenApiParameter(
                    "limit", int, description="At most this many (default 100, max 500)."
                ),
            ],
            responses={
                200: EventPageSerializer,
                410: OpenApiResponse(
                    EventsGoneSerializer,
                    description="`after` is older than the oldest event kept: refetch the state.",
                ),
            },
        )
        return extend_schema_view(get=feed)(type("ActivityFeed", (self.target_class,), {}))


class WebhookListSchema(OpenApiViewExtension):
    target_class = "functions.projects.webhooks.WebhookList"

    def view_replacement(self):
        create = extend_schema(request=WebhookSerializer, responses={201: WebhookCreatedSerializer})
        return extend_schema_view(post=create)(type("WebhookList", (self.target_class,), {}))


class RedeliverSchema(OpenApiViewExtension):
    target_class = "functions.projects.webhooks.Redeliver"

    def view_replacement(self):
        again = extend_schema(request=None, responses={202: WebhookDeliverySerializer})
        return extend_schema_view(post=again)(type("Redeliver", (self.target_class,), {}))
