"""Lambda events as AWS sends them: API Gateway HTTP API (v2), REST API (v1) and ALB."""

import json
from urllib.parse import parse_qsl


def _body(body: dict | None) -> tuple[str | None, dict[str, str]]:
    if body is None:
        return None, {}
    text = json.dumps(body)
    return text, {"content-type": "application/json", "content-length": str(len(text.encode()))}


def http_api_v2(method: str, path: str, *, query: str = "", headers=None, body=None) -> dict:
    text, body_headers = _body(body)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "api.example.com", **body_headers, **(headers or {})},
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "10.0.0.1",
            },
            "stage": "$default",
        },
        "body": text,
        "isBase64Encoded": False,
    }


def rest_api_v1(method: str, path: str, *, query: str = "", headers=None, body=None) -> dict:
    text, body_headers = _body(body)
    params = dict(parse_qsl(query)) or None
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"Host": "api.example.com", **body_headers, **(headers or {})},
        "multiValueHeaders": None,
        "queryStringParameters": params,
        "multiValueQueryStringParameters": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "identity": {"sourceIp": "10.0.0.1"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


def alb(method: str, path: str, *, query: str = "", headers=None, body=None) -> dict:
    text, body_headers = _body(body)
    return {
        "requestContext": {
            "elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:::targetgroup/tw"}
        },
        "httpMethod": method,
        "path": path,
        "queryStringParameters": dict(parse_qsl(query)),
        "headers": {"host": "api.example.com", **body_headers, **(headers or {})},
        "body": text or "",
        "isBase64Encoded": False,
    }


EVENT_KINDS = {"http_api_v2": http_api_v2, "rest_api_v1": rest_api_v1, "alb": alb}
