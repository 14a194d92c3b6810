"""`make lambda-package`'s folder answers API Gateway v2 events on its own.

The package is built here as the make target builds it (Linux x86_64 wheels from PyPI), then
each handler runs in a Python that sees only the standard library and that folder (`-I -S`:
no virtualenv, no site-packages, no PYTHONPATH), as Lambda's runtime would, with production
settings against this machine's PostgreSQL and Redis.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from deploy.aws import package

API_HOST = "abc123.execute-api.us-east-1.amazonaws.com"

RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import importlib
module = importlib.import_module(sys.argv[2])
answers = []
for event in json.loads(sys.argv[3]):
    answer = module.handler(event, None)
    answers.append({"statusCode": answer["statusCode"], "body": answer["body"],
                    "headers": answer.get("headers", {})})
import django, mangum
print(json.dumps({"answers": answers, "django": django.__file__, "mangum": mangum.__file__,
                  "path": sys.path}))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return package.build(tmp_path_factory.mktemp("lambda") / "package")


def _event(method: str, path: str, headers: dict | None = None) -> dict:
    """An HTTP API (payload 2.0) event, as API Gateway sends it to a Lambda."""
    return {
        "version": "2.0",
        "routeKey": f"ANY {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "host": API_HOST,
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
            "x-forwarded-for": "203.0.113.7",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": API_HOST,
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "test",
            },
            "requestId": "request-1",
            "routeKey": f"ANY {path}",
            "stage": "$default",
            "time": "01/Dec/2026:00:00:00 +0000",
            "timeEpoch": 1796083200000,
        },
        "isBase64Encoded": False,
    }


def _invoke(built: Path, module: str, events: list[dict]) -> dict:
    env = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": ".execute-api.us-east-1.amazonaws.com",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(built), module, json.dumps(events)],
        env=env,
        cwd=built,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_package_holds_the_code_and_the_pinned_dependencies_only(built):
    assert (built / "functions" / "auth" / "handler.py").is_file()
    assert (built / "scheduled" / "dispatch.py").is_file()
    for name in package.PACKAGES:  # no test code of ours shipped
        assert not list((built / name).rglob("tests"))
    pins = dict(
        line.split("==")
        for line in (package.ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line
    )
    installed = {
        path.name.split("-")[0].lower().replace("_", "-") for path in built.glob("*.dist-info")
    }
    assert {name.lower().replace("_", "-") for name in pins} == installed
    # Linux wheels for CPython 3.11, whatever built it: psycopg's C build for one.
    assert list((built / "psycopg_binary").glob("*cpython-311-x86_64-linux-gnu.so"))


@pytest.mark.django_db
def test_the_package_answers_api_gateway_events_in_a_clean_python(built):
    auth = _invoke(
        built, "functions.auth.handler", [_event("GET", "/healthz"), _event("GET", "/nowhere/")]
    )
    assert auth["django"].startswith(str(built))  # its own Django, nothing from this venv
    assert auth["mangum"].startswith(str(built))
    assert all("site-packages" not in entry for entry in auth["path"])
    health, missing = auth["answers"]
    assert (health["statusCode"], json.loads(health["body"])) == (200, {"status": "ok"})
    assert (missing["statusCode"], json.loads(missing["body"])) == (404, {"detail": "Not found."})

    projects = _invoke(
        built,
        "functions.projects.handler",
        [_event("GET", "/projects/"), _event("GET", "/projects/", {"authorization": "Bearer x"})],
    )
    for answer in projects["answers"]:
        assert answer["statusCode"] == 401, answer
        assert "detail" in json.loads(answer["body"])


IMPORT_ALL = """
import importlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
sys.path.insert(0, str(root))
import django
django.setup()
failed = {}
for package in sys.argv[2:]:
    for path in sorted((root / package).rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        if name.startswith("functions.admin"):  # the admin's own settings install the admin
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:  # what is missing, by module
            failed[name] = repr(exc)
print(json.dumps(failed))
"""


def test_every_module_the_package_ships_imports_with_the_runtime_dependencies_only(built):
    """The worker's and the realtime service's modules too, in the same image: a module that
    needs a library pinned only for development (httpx once) fails here, not in production."""
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "DEBUG": "false",
           "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "localhost",
           "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
           "REDIS_URL": settings.REDIS_URL, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "DJANGO_SETTINGS_MODULE": "common.infra.settings"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_ALL, str(built), *package.PACKAGES],
        env=env, cwd=built, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {}
