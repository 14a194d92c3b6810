"""The realtime service: /ws/notifications/ over websockets, /healthz and /readyz over HTTP.

Container: `uvicorn realtime.handler:application`
"""

from common.asgi import function_application

http = function_application("common.urls")  # also sets Django up, before the consumer imports

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from realtime.consumers import NotificationConsumer  # noqa: E402
from realtime.origin import AllowedHostsOriginValidator  # noqa: E402

websocket = AllowedHostsOriginValidator(
    URLRouter([path("ws/notifications/", NotificationConsumer.as_asgi())])
)
application = ProtocolTypeRouter({"http": http, "websocket": websocket})
