"""The realtime service: /ws/notifications/ over websockets, /healthz and /readyz over HTTP.

Container: `uvicorn realtime.handler:application --ws-per-message-deflate false --ws-max-size
65536` (events are small JSON: compressing each one for each client costs more CPU than it saves
bytes; a client frame over 64 KiB closes the socket with 1009 before it is read whole).
"""

import gc

from common.infra.asgi import function_application

http = function_application("common.api.urls")  # also sets Django up, before the consumer imports

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from realtime.consumers import NotificationConsumer  # noqa: E402
from realtime.lifespan import lifespan  # noqa: E402
from realtime.origin import AllowedHostsOriginValidator  # noqa: E402

websocket = AllowedHostsOriginValidator(
    URLRouter([path("ws/notifications/", NotificationConsumer.as_asgi())])
)
application = ProtocolTypeRouter({"http": http, "websocket": websocket, "lifespan": lifespan})

# Long-lived connections make Python's full collections slow enough to show as event latency
# spikes (p99 at 1000 clients: 170 ms before, 45 ms after; bench ws_latency). Keep start-up
# objects out of collection, and collect the young generation less often.
gc.freeze()
gc.set_threshold(50_000, 20, 100)
