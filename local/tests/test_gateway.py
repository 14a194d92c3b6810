"""The local gateway: the route table and one process serving every function."""

import httpx
import pytest
from asgiref.sync import async_to_sync

from local.routes import route


@pytest.mark.parametrize(
    ("path", "function"),
    [
        ("/projects/", "projects"),
        ("/projects/7/summaries/", "projects"),
        ("/tasks/", "tasks"),
        ("/tasks/7/", "tasks"),
        ("/tasks/7/comments/", "comments"),
        ("/auth/token/", "auth"),
        ("/auth/me/", "auth"),
        ("/healthz", "auth"),
        ("/docs/", "local"),
        ("/schema/", "local"),
        ("/local/outbox/", "local"),
        ("/local/jobs/send_due_reminders/", "local"),
        ("/ws/notifications/", "realtime"),
        ("/elsewhere/", None),
        ("/projectsx/", None),
    ],
)
def test_each_path_goes_to_the_function_that_owns_it(path, function):
    assert route(path) == function


@pytest.fixture
def gateway(settings):
    from local.run import build_gateway

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_gateway()), base_url="http://testserver"
    )


@pytest.mark.django_db(transaction=True)
def test_the_gateway_serves_every_function_on_one_port(gateway, django_user_model):
    django_user_model.objects.create_user(username="demo", password="demo-pass-1")
    # async_to_sync runs the views on this thread, so no other thread keeps a connection open.
    token, project, task, comment, health, missing = async_to_sync(_crud_through)(gateway)

    assert [r.status_code for r in (token, project, task, comment)] == [200, 201, 201, 201]
    assert comment.json()["author"] == "demo"
    assert health.json() == {"status": "ok"}
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not found."})


async def _crud_through(gateway: httpx.AsyncClient) -> list[httpx.Response]:
    async with gateway as client:
        token = await client.post(
            "/auth/token/", json={"username": "demo", "password": "demo-pass-1"}
        )
        headers = {"Authorization": f"Bearer {token.json()['access']}"}
        project = await client.post("/projects/", json={"name": "Gateway"}, headers=headers)
        task = await client.post(
            "/tasks/",
            json={
                "project": project.json()["id"],
                "title": "t",
                "due_date": "2030-01-01T00:00:00Z",
            },
            headers=headers,
        )
        comment = await client.post(
            f"/tasks/{task.json()['id']}/comments/", json={"content": "c"}, headers=headers
        )
        health = await client.get("/healthz")
        missing = await client.get("/elsewhere/")
    return [token, project, task, comment, health, missing]


def test_the_gateway_serves_the_docs_and_schema_in_local_mode(settings):
    from local.run import build_gateway

    settings.LOCAL_MODE = True
    transport = httpx.ASGITransport(app=build_gateway())
    docs, schema = async_to_sync(_get_docs)(
        httpx.AsyncClient(transport=transport, base_url="http://testserver")
    )

    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content


def test_the_gateway_has_no_docs_outside_local_mode(gateway):
    docs, schema = async_to_sync(_get_docs)(gateway)

    assert (docs.status_code, schema.status_code) == (404, 404)


async def _get_docs(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
    async with client:
        return await client.get("/docs/"), await client.get("/schema/")


@pytest.mark.django_db(transaction=True)
def test_the_gateway_serves_the_notification_socket(django_user_model):
    from channels.testing import WebsocketCommunicator
    from rest_framework_simplejwt.tokens import AccessToken

    from local.run import build_gateway

    token = AccessToken.for_user(django_user_model.objects.create_user(username="ws"))

    async def ping() -> dict:
        socket = WebsocketCommunicator(build_gateway(), f"/ws/notifications/?token={token}")
        assert (await socket.connect())[0]
        await socket.send_json_to({"action": "ping"})
        answer = await socket.receive_json_from()
        await socket.disconnect()
        return answer

    assert async_to_sync(ping)() == {"type": "pong"}


def test_a_websocket_to_an_http_function_is_refused(settings):
    from channels.testing import WebsocketCommunicator

    from local.run import build_gateway

    async def connect() -> bool:
        socket = WebsocketCommunicator(build_gateway(), "/projects/")
        connected, _ = await socket.connect()
        return connected

    assert async_to_sync(connect)() is False
