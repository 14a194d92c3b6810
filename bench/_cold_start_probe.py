"""One cold start, run as a fresh interpreter by bench.cold_start: `python PROBE MODULE`.

Imports MODULE (a function module exposing a Mangum `handler`), answers one API Gateway HTTP API
(payload 2.0) event for GET /healthz, prints {"import_ms", "first_event_ms"} as JSON and exits at
once: the time of interest ends with the answer, not with interpreter finalization.
"""

import json
import os
import sys
import time
from types import SimpleNamespace

# The Host of an HTTP API default endpoint; bench.cold_start allows it in both functions.
HOST = "abcdef1234.execute-api.eu-west-1.amazonaws.com"
# The runtime's context object: Mangum 0.22 reads none of it, only passes it on (scope
# ["aws.context"]); these are attributes the Lambda Python runtime provides.
CONTEXT = SimpleNamespace(
    function_name="taskwire-bench",
    aws_request_id="00000000-0000-4000-8000-000000000000",
    memory_limit_in_mb=512,
    get_remaining_time_in_millis=lambda: 30_000,
)
HEADERS = {"accept": "application/json", "host": HOST, "user-agent": "taskwire-bench"}
HEADERS |= {
    "x-forwarded-for": "203.0.113.7",
    "x-forwarded-port": "443",
    "x-forwarded-proto": "https",
}
HTTP = {"method": "GET", "path": "/healthz", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"}
# GET /healthz as API Gateway HTTP API sends it with payload format version 2.0.
EVENT = {
    "version": "2.0",
    "routeKey": "GET /healthz",
    "rawPath": "/healthz",
    "rawQueryString": "",
    "headers": HEADERS,
    "requestContext": {
        "accountId": "000000000000",
        "apiId": HOST.split(".", 1)[0],
        "domainName": HOST,
        "domainPrefix": HOST.split(".", 1)[0],
        "http": {**HTTP, "userAgent": "taskwire-bench"},
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
    # The import statement's own path (not importlib), so that -X importtime reports the module.
    module = __import__(module_name, fromlist=["handler"])
    imported = time.perf_counter()
    response = module.handler(EVENT, CONTEXT)
    answered = time.perf_counter()
    if response.get("statusCode") != 200:
        print(f"GET /healthz answered {response!r}", file=sys.stderr, flush=True)
        os._exit(1)
    timings = {
        "import_ms": (imported - started) * 1e3,
        "first_event_ms": (answered - imported) * 1e3,
    }
    print(json.dumps(timings), flush=True)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
