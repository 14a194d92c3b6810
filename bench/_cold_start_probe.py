"""One cold start, run as a fresh interpreter by bench.cold_start: `python PROBE MODULE`.

Imports MODULE (a function module exposing a Mangum `handler`), answers one API Gateway HTTP API
(payload 2.0) event for GET /healthz, prints {"import_ms", "first_event_ms"} as JSON and exits at
once: the time of interest ends with the answer, not with interpreter finalization.
"""

import json
import os
import sys
import time
from typing import Any

# The Host of an HTTP API default endpoint; bench.cold_start allows it in both functions.
HOST = "abcdef1234.execute-api.eu-west-1.amazonaws.com"


class LambdaContext:
    """The runtime's context object. Mangum 0.22 reads no attribute: it only passes the object
    on as scope["aws.context"]. These are the attributes the Lambda Python runtime provides."""

    function_name = "taskwire-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:taskwire-bench"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/taskwire-bench"
    log_stream_name = "2026/01/01/[$LATEST]00000000000000000000000000000000"
    identity = None
    client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def healthz_event() -> dict[str, Any]:
    """GET /healthz as API Gateway HTTP API sends it with payload format version 2.0."""
    return {
        "version": "2.0",
        "routeKey": "GET /healthz",
        "rawPath": "/healthz",
        "rawQueryString": "",
        "headers": {
            "accept": "application/json",
            "host": HOST,
            "user-agent": "taskwire-bench",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": HOST.split(".", 1)[0],
            "domainName": HOST,
            "domainPrefix": HOST.split(".", 1)[0],
            "http": {
                "method": "GET",
                "path": "/healthz",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "taskwire-bench",
            },
            "requestId": "bench-request-1",
            "routeKey": "GET /healthz",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        "isBase64Encoded": False,
    }


def main(module_name: str) -> None:
    started = time.perf_counter()
    # The import statement's own path (not importlib.import_module), so that -X importtime
    # reports the module itself too.
    module = __import__(module_name, fromlist=["handler"])
    imported = time.perf_counter()
    response = module.handler(healthz_event(), LambdaContext())
    answered = time.perf_counter()
    if response.get("statusCode") != 200:
        print(f"GET /healthz answered {response!r}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)
    timings = {
        "import_ms": (imported - started) * 1000,
        "first_event_ms": (answered - imported) * 1000,
    }
    print(json.dumps(timings), flush=True)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
