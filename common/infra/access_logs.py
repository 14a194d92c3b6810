"""Access-log redaction: no log line carries the access token of a websocket URL (`?token=`)."""

import logging
import re

# A /ws/ path with its query string, as uvicorn logs it: the query may carry a token.
_WEBSOCKET_QUERY = re.compile(r"^(/ws/[^?]*)\?.*$", re.DOTALL)
REDACTED = "[redacted]"


def redact_websocket_query(path: str) -> str:
    """The path without what a /ws/ query string says: `/ws/notifications/?[redacted]`."""
    return _WEBSOCKET_QUERY.sub(rf"\1?{REDACTED}", path)


class RedactWebsocketQuery(logging.Filter):
    """On uvicorn's loggers: the path arguments of its request lines lose their /ws/ queries."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_websocket_query(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True
