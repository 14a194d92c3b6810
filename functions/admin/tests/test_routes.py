"""The admin answers /admin/, its static files and health, and nothing else; nobody else
answers /admin/; the API functions start without the admin's apps."""

import os
import subprocess
import sys

import httpx
import pytest
from asgiref.sync import async_to_sync

from local.routes import route

STYLESHEET = "/static/admin/css/base.css"


def get(app, path: str) -> httpx.Response:
    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path)

    return async_to_sync(request)()


@pytest.fixture(autouse=True)
def _hosts(settings):
    settings.ALLOWED_HOSTS = ["testserver"]


@pytest.mark.django_db(transaction=True)
def test_the_admin_function_answers_the_admin_its_static_files_and_health():
    from functions.admin.handler import application

    index, login = get(application, "/admin/"), get(application, "/admin/login/")
    stylesheet, health = get(application, STYLESHEET), get(application, "/healthz")

    assert (index.status_code, index.headers["location"]) == (302, "/admin/login/?next=/admin/")
    assert login.status_code == 200
    assert "Taskwire admin" in login.text
    assert stylesheet.status_code == 200
    assert stylesheet.headers["content-type"] == "text/css"
    assert health.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/projects/", "/tasks/", "/auth/me/", "/static/admin/none.css"])
def test_the_admin_function_answers_404_for_everything_else(path):
    from functions.admin.handler import application

    response = get(application, path)

    assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("function", ["projects", "tasks", "comments", "auth"])
def test_the_api_functions_do_not_answer_the_admin(function):
    import importlib

    application = importlib.import_module(f"functions.{function}.handler").application

    for path in ("/admin/", "/admin/login/", STYLESHEET):
        response = get(application, path)
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."}), path


def test_the_route_table_sends_the_admin_and_its_static_files_to_the_admin():
    assert [route(p) for p in ("/admin/", "/admin/login/", STYLESHEET)] == ["admin"] * 3
    assert route("/static/drf_spectacular_sidecar/x.js") == "local"
    assert route("/administrator/") is None


@pytest.mark.django_db(transaction=True)
def test_the_local_gateway_serves_the_admin_and_its_static_files():
    from local.run import build_gateway

    gateway = build_gateway()

    assert get(gateway, "/admin/login/").status_code == 200
    assert get(gateway, STYLESHEET).status_code == 200


def test_the_api_functions_start_without_the_admins_apps_and_middleware():
    """What the admin needs stays out of the API functions' start-up (bench cold_start)."""
    probe = (
        "import sys, functions.projects.handler; from django.conf import settings; "
        "print(sorted(set(settings.INSTALLED_APPS + settings.MIDDLEWARE) & set(sys.argv[1:])), "
        "sorted(m for m in ('functions.admin', 'django.contrib.sessions') if m in sys.modules))"
    )
    admin_only = ["django.contrib.sessions", "django.contrib.messages"]
    admin_only += ["django.contrib.sessions.middleware.SessionMiddleware"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "common.infra.settings"}  # a function's own

    result = subprocess.run(
        [sys.executable, "-c", probe, *admin_only], env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"
