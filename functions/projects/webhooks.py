"""A project's activity and webhooks over HTTP (CONTRACT section 6).

/projects/{id}/events/ reads the event log as the websocket sends it; /projects/{id}/webhooks/...
make one call of common.domain.webhooks each. Access is declared per method (common.domain.access):
viewers read the activity, only admins and the owner reach any webhook path.
"""

import json
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import generics, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response

from common.api.idempotency import IdempotentPostMixin
from common.domain import webhooks
from common.domain.access import Operation, ProjectAccess
from common.domain.events import envelope, event_list_after, event_oldest_kept
from common.domain.models import Webhook, WebhookDelivery
from common.infra.event_push import encode
from functions.projects.serializers import (
    WebhookCreatedSerializer,
    WebhookDeliverySerializer,
    WebhookSerializer,
)

LIMIT_DEFAULT = 100
LIMIT_MAX = 500


class Gone(APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "No longer kept."


class _InProject(generics.GenericAPIView):
    permission_classes = [*generics.GenericAPIView.permission_classes, ProjectAccess]

    def access_project_id(self) -> int:
        return self.kwargs["pk"]


def _whole_number(request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise ValidationError({"detail": f"`{name}` must be a whole number of 0 or more."})
    return int(raw)


class ActivityFeed(_InProject):
    """The project's logged events after `after`, oldest first: the websocket's envelopes."""

    operations = {"GET": Operation.READ}
    documented_errors = {"400": "`after` or `limit` is not a whole number."}

    def get(self, request, pk: int) -> HttpResponse:
        after = _whole_number(request, "after", 0)
        limit = min(max(_whole_number(request, "limit", LIMIT_DEFAULT), 1), LIMIT_MAX)
        events = event_list_after(project_id=pk, seq=after, limit=limit)
        if not events or events[0].seq != after + 1:  # a gap at the start: pruned past `after`?
            oldest = event_oldest_kept(project_id=pk)
            if after + 1 < oldest:
                gone = {"detail": "Events after this seq are no longer kept.", "oldest": oldest}
                return Response(gone, status=status.HTTP_410_GONE)
        next_url = None
        if len(events) == limit:
            query = urlencode({"after": events[-1].seq, "limit": limit})
            next_url = request.build_absolute_uri(f"{request.path}?{query}")
        # Each envelope is the very text the websocket sends (common.infra.event_push.encode).
        results = ",".join(encode(envelope(event)) for event in events)
        body = f'{{"results":[{results}],"next":{json.dumps(next_url)}}}'
        return HttpResponse(body, content_type="application/json")


class _Webhooks(_InProject):
    queryset = Webhook.objects.none()  # names the model for the schema; rows: get_queryset
    operations = dict.fromkeys(("GET", "POST", "PATCH", "DELETE"), Operation.MANAGE_WEBHOOKS)

    def get_queryset(self):
        return Webhook.objects.filter(project_id=self.kwargs["pk"]).order_by("id")


class WebhookList(IdempotentPostMixin, _Webhooks, generics.ListCreateAPIView):
    """The project's webhooks, or a new one (its secret is in this answer only)."""

    serializer_class = WebhookSerializer

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        webhook = webhooks.webhook_create(
            actor=request.user, project_id=self.kwargs["pk"], **serializer.validated_data
        )
        return Response(WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetail(_Webhooks, generics.RetrieveUpdateDestroyAPIView):
    """One webhook; PATCH changes `url`, `events`, `active`; DELETE takes its log with it."""

    serializer_class = WebhookSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["wid"])

    def perform_update(self, serializer):
        serializer.instance = webhooks.webhook_update(
            actor=self.request.user, webhook=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        webhooks.webhook_delete(actor=self.request.user, webhook=instance)


class _Deliveries(_InProject):
    serializer_class = WebhookDeliverySerializer
    queryset = WebhookDelivery.objects.none()  # names the model for the schema
    operations = {"GET": Operation.MANAGE_WEBHOOKS, "POST": Operation.MANAGE_WEBHOOKS}

    def get_queryset(self):
        webhook = get_object_or_404(
            Webhook.objects.filter(project_id=self.kwargs["pk"]), pk=self.kwargs["wid"]
        )
        return WebhookDelivery.objects.filter(webhook=webhook).order_by("-id")


class DeliveryList(_Deliveries, generics.ListAPIView):
    """The webhook's delivery attempts, newest first, one row per attempt."""


class _Redeliver(_Deliveries):
    def post(self, request, pk: int, wid: int, did: int) -> Response:
        delivery = get_object_or_404(self.get_queryset().select_related("webhook"), pk=did)
        try:
            again = webhooks.delivery_redeliver(actor=request.user, delivery=delivery)
        except webhooks.WebhookInactive as exc:
            raise ValidationError({"detail": str(exc)}) from None
        except webhooks.EventGone as exc:
            raise Gone(str(exc)) from None
        return Response(self.get_serializer(again).data, status=status.HTTP_202_ACCEPTED)


class Redeliver(IdempotentPostMixin, _Redeliver):
    """Send the delivery's event again, as a new attempt 1 (with retries of its own)."""

    documented_errors = {
        "400": "The webhook is not active.",
        "410": "The event is no longer kept.",
    }
