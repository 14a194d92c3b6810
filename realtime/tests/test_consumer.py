"""/ws/notifications/ through Channels' communicator, on Redis pub/sub and PostgreSQL."""

import asyncio
from datetime import timedelta
from unittest import mock

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from common.api.serializers import TaskSerializer
from common.domain import services
from common.domain.events import event_prune
from common.domain.models import Event, Task
from common.tests.factories import ProjectFactory, UserFactory
from realtime.fanout import hub
from realtime.tests.conftest import TIMEOUT, expired_token, in_thread, receive

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there


def create_task(project, title="t", actor=None):
    return services.task_create(actor=actor, project=project, title=title, due_date=timezone.now())


# -- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["none", "garbage", "expired", "refresh", "inactive"])
async def test_a_socket_without_a_valid_access_token_is_closed_with_4401(connect, user, kind):
    inactive = await in_thread(UserFactory)(username="gone", is_active=False)
    refresh = await in_thread(RefreshToken.for_user)(user)  # recorded: outstanding
    token = {
        "none": None,
        "garbage": "not-a-jwt",
        "expired": expired_token(user),
        "refresh": str(refresh),
        "inactive": str(AccessToken.for_user(inactive)),
    }[kind]

    socket = await connect(token=token)

    assert await socket.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4401}


async def test_the_token_may_come_in_the_authorization_header(connect, token):
    socket = await connect(token=None, headers=[(b"authorization", f"Bearer {token}".encode())])

    await socket.send_json_to({"action": "ping"})
    assert await receive(socket) == {"type": "pong"}


async def test_the_token_may_come_as_a_subprotocol_and_bearer_is_accepted(application, token):
    from channels.testing import WebsocketCommunicator

    socket = WebsocketCommunicator(
        application, "/ws/notifications/", subprotocols=["bearer", token]
    )

    assert await socket.connect(timeout=TIMEOUT) == (True, "bearer")
    await socket.send_json_to({"action": "ping"})
    assert await receive(socket) == {"type": "pong"}
    await socket.disconnect()


async def test_a_bad_subprotocol_token_is_closed_with_4401_after_accepting_bearer(application):
    from channels.testing import WebsocketCommunicator

    socket = WebsocketCommunicator(
        application, "/ws/notifications/", subprotocols=["bearer", "not-a-jwt"]
    )

    assert await socket.connect(timeout=TIMEOUT) == (True, "bearer")
    assert await socket.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4401}


async def test_a_token_that_expires_while_connected_closes_the_socket_with_4401(connect, user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=1))

    socket = await connect(token=str(token))

    assert await socket.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4401}


async def test_a_foreign_origin_is_refused_and_an_allowed_one_accepted(application, token):
    from channels.testing import WebsocketCommunicator

    path = f"/ws/notifications/?token={token}"
    foreign = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"https://evil.example")]
    )
    allowed = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://testserver")])

    assert (await foreign.connect(timeout=TIMEOUT))[0] is False
    assert (await allowed.connect(timeout=TIMEOUT))[0] is True
    await allowed.disconnect()


# -- live events ----------------------------------------------------------------------------


async def test_task_and_comment_writes_arrive_as_events_in_order(connect, user):
    project = await in_thread(ProjectFactory)(owner=user)
    socket = await connect()

    task = await in_thread(create_task)(project, "Write", actor=user)
    created = await receive(socket)
    await in_thread(services.task_update)(actor=user, task=task, status="in_progress")
    updated = await receive(socket)
    await in_thread(services.comment_create)(actor=user, task=task, author="alice", content="hi")
    commented = await receive(socket)
    await in_thread(services.task_delete)(
        actor=user, task=await in_thread(Task.objects.get)(pk=task.pk)
    )
    deleted = await receive(socket)

    assert [e["type"] for e in (created, updated, commented, deleted)] == [
        "task.created",
        "task.updated",
        "comment.created",
        "task.deleted",
    ]
    assert [e["seq"] for e in (created, updated, commented, deleted)] == [1, 2, 3, 4]
    assert {e["project"] for e in (created, updated, commented, deleted)} == {project.id}
    assert created["actor"] == "alice"
    assert created["data"] == await in_thread(lambda: TaskSerializer(task).data)()
    assert updated["data"]["status"] == "in_progress"
    assert commented["data"]["task_title"] == "Write"
    assert commented["data"]["content"] == "hi"
    assert deleted["data"] == {"id": task.id, "project": project.id}
    assert set(created) == {"type", "project", "seq", "id", "occurred_at", "actor", "data"}


async def test_project_writes_arrive_and_a_delete_is_one_event(connect, user):
    socket = await connect()

    project = await in_thread(services.project_create)(actor=user, name="P")
    await in_thread(create_task)(project)
    await in_thread(services.project_delete)(actor=user, project=project)

    events = [await receive(socket) for _ in range(3)]
    assert [(e["type"], e["seq"]) for e in events] == [
        ("project.created", 1),
        ("task.created", 2),
        ("project.deleted", 3),
    ]
    assert events[0]["data"]["owner"] == "alice"
    assert events[2]["data"] == {"id": events[0]["project"]}


async def test_the_projects_filter_sends_only_those_projects(connect):
    wanted, other = (
        await in_thread(ProjectFactory)(owner__username="alice"),
        await in_thread(ProjectFactory)(owner__username="alice"),
    )
    socket = await connect(f"projects={wanted.id}")

    await in_thread(create_task)(other)
    await in_thread(create_task)(wanted)

    event = await receive(socket)
    assert event["project"] == wanted.id  # the other project's earlier event never came
    assert await socket.receive_nothing(timeout=0.2)


async def test_a_socket_whose_sends_wait_holds_up_no_other_and_gets_its_events_in_order(connect):
    project = await in_thread(ProjectFactory)(owner__username="alice")
    sockets = [await connect(), await connect()]
    await in_thread(create_task)(project)
    assert [(await receive(socket))["seq"] for socket in sockets] == [1, 1]
    held, gate = next(iter(hub().by_user["alice"])), asyncio.Event()
    send = held.base_send

    async def send_once_let_through(message):  # a slow client: its send waits
        await gate.wait()
        await send(message)

    held.base_send = send_once_let_through
    for title in ("a", "b", "c"):
        await in_thread(create_task)(project, title)

    waiting = [await socket.receive_nothing(timeout=0.5) for socket in sockets]
    assert sorted(waiting) == [False, True]
    fast, slow = sockets[waiting.index(False)], sockets[waiting.index(True)]
    assert [(await receive(fast))["seq"] for _ in range(3)] == [2, 3, 4]
    gate.set()
    assert [(await receive(slow))["seq"] for _ in range(3)] == [2, 3, 4]


async def test_a_socket_whose_send_fails_is_closed_and_the_others_get_the_event(connect, caplog):
    project = await in_thread(ProjectFactory)(owner__username="alice")
    sockets = [await connect(), await connect()]
    await in_thread(create_task)(project)
    assert [(await receive(socket))["seq"] for socket in sockets] == [1, 1]
    broken = next(iter(hub().by_user["alice"]))
    send = broken.base_send

    async def fails_on_events(message):
        if message["type"] == "websocket.send":
            raise RuntimeError("broken socket")
        await send(message)

    broken.base_send = fails_on_events
    await in_thread(create_task)(project, "second")

    outputs = [await socket.receive_output(timeout=TIMEOUT) for socket in sockets]
    assert sorted(output["type"] for output in outputs) == ["websocket.close", "websocket.send"]
    assert {output.get("code") for output in outputs} == {None, 1011}
    assert "an event could not be sent" in caplog.text


async def test_a_bad_query_gets_an_error_and_close_4400(connect):
    socket = await connect("projects=1,abc")

    assert (await receive(socket))["type"] == "error"
    assert await socket.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": 4400}


async def test_a_rolled_back_write_sends_nothing(connect):
    project = await in_thread(ProjectFactory)(owner__username="alice")
    socket = await connect()

    def write_then_fail():
        from django.db import transaction

        def doomed():
            with transaction.atomic():
                create_task(project, "doomed")
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError, match="roll back"):
            doomed()

    await in_thread(write_then_fail)()
    await in_thread(create_task)(project, "kept")

    event = await receive(socket)
    assert (event["data"]["title"], event["seq"]) == ("kept", 1)
    assert await in_thread(lambda: list(Event.objects.values_list("seq", flat=True)))() == [1]


# -- resume, gaps, retention ------------------------------------------------------------------


async def test_resume_replays_missed_events_in_order_then_goes_live_without_duplicates(connect):
    project = await in_thread(ProjectFactory)(owner__username="alice")
    for title in ("a", "b", "c"):
        await in_thread(create_task)(project, title)

    socket = await connect(f"since={project.id}:1")
    replayed = [await receive(socket), await receive(socket)]
    await in_thread(create_task)(project, "d")
    live = await receive(socket)

    assert [(e["seq"], e["data"]["title"]) for e in replayed] == [(2, "b"), (3, "c")]
    assert (live["seq"], live["data"]["title"]) == (4, "d")
    assert await socket.receive_nothing(timeout=0.2)


async def test_since_zero_replays_from_the_start(connect):
    project = await in_thread(ProjectFactory)(owner__username="alice")
    await in_thread(create_task)(project)

    socket = await connect(f"since={project.id}:0")

    assert (await receive(socket))["seq"] == 1


async def test_an_event_already_replayed_is_not_sent_again_when_it_arrives_live(connect):
    from django.conf import settings

    from common.infra.event_push import event_channel
    from realtime.fanout import redis_client

    project = await in_thread(ProjectFactory)(owner__username="alice")
    await in_thread(create_task)(project)
    socket = await connect(f"since={project.id}:0")
    first = await receive(socket)

    replayed = '{"seq": 1}'  # what arrives live after the replay sent it
    await redis_client(settings.CHANNEL_REDIS_URL).publish(event_channel(project.id), replayed)
    await in_thread(create_task)(project)

    assert (first["seq"], (await receive(socket))["seq"]) == (1, 2)


async def test_an_event_lost_on_the_way_is_filled_in_from_the_log_before_the_next(connect, caplog):
    project = await in_thread(ProjectFactory)(owner__username="alice")
    await in_thread(create_task)(project, "seen")
    socket = await connect(f"since={project.id}:1")

    with override_settings(CHANNEL_REDIS_URL=CLOSED_REDIS):  # this writer cannot reach Redis
        await in_thread(create_task)(project, "lost")
    await in_thread(create_task)(project, "next")

    events = [await receive(socket), await receive(socket)]
    assert [(e["seq"], e["data"]["title"]) for e in events] == [(2, "lost"), (3, "next")]
    assert "not pushed live" in caplog.text


async def test_a_cursor_older_than_retention_gets_resync_required(connect):
    project = await in_thread(ProjectFactory)(owner__username="alice")
    for _ in range(3):
        await in_thread(create_task)(project)

    def prune_first_two():
        old = timezone.now() - timedelta(days=8)
        Event.objects.filter(seq__lte=2).update(occurred_at=old)
        assert event_prune() == 2

    await in_thread(prune_first_two)()
    socket = await connect(f"since={project.id}:0")

    assert await receive(socket) == {"type": "resync.required", "project": project.id}
    await in_thread(create_task)(project)
    assert (await receive(socket))["seq"] == 4


async def test_a_cursor_past_the_latest_event_gets_resync_required(connect):
    project = await in_thread(ProjectFactory)(owner__username="alice")

    socket = await connect(f"since={project.id}:5,999999:3")

    # An unknown project is one the user is not a member of: nothing says whether it exists.
    assert await receive(socket) == {"type": "unsubscribed", "project": 999999}
    assert await receive(socket) == {"type": "resync.required", "project": project.id}


# -- client messages and keep-alive ---------------------------------------------------------------


async def test_ping_gets_pong_and_anything_else_an_error_without_closing(connect):
    socket = await connect()

    await socket.send_json_to({"action": "ping"})
    pong = await receive(socket)
    await socket.send_json_to({"action": "subscribe"})
    error = await receive(socket)
    await socket.send_to(text_data="not json")
    not_json = await receive(socket)
    await socket.send_json_to([1, 2])
    a_list = await receive(socket)
    await socket.send_json_to({"action": "ping"})

    assert pong == {"type": "pong"}
    assert [m["type"] for m in (error, not_json, a_list)] == ["error"] * 3
    assert all(m["detail"] for m in (error, not_json, a_list))
    assert await receive(socket) == {"type": "pong"}


async def test_the_server_pings_idle_clients(connect):
    with mock.patch("django.conf.settings.REALTIME_PING_SECONDS", 0.05):
        socket = await connect()

        assert await receive(socket) == {"type": "ping"}


async def test_json_nested_too_deeply_gets_an_error_and_the_socket_stays_open(connect):
    socket = await connect()

    await socket.send_to(text_data="[" * 100_000)
    error = await receive(socket)
    await socket.send_json_to({"action": "ping"})

    assert error["type"] == "error"
    assert await receive(socket) == {"type": "pong"}


async def test_an_ipv6_origin_in_allowed_hosts_is_accepted(application, token, settings):
    from channels.testing import WebsocketCommunicator

    settings.ALLOWED_HOSTS = ["[::1]"]
    path = f"/ws/notifications/?token={token}"
    socket = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://[::1]:8000")])

    assert (await socket.connect(timeout=TIMEOUT))[0] is True
    await socket.disconnect()


async def test_a_stored_summary_report_arrives_as_summary_generated(connect):
    from scheduled.summaries import _store

    project = await in_thread(ProjectFactory)(owner__username="alice")
    socket = await connect(f"projects={project.id}")

    await in_thread(lambda: _store(timezone.now(), timezone.localdate()))()

    event = await receive(socket)
    assert (event["type"], event["project"], event["seq"]) == ("summary.generated", project.id, 1)
    assert event["data"]["project"] == project.id
    assert event["data"]["total"] == 0
