"""The fan-out: one subscription per process, each event handed to the sockets of its project."""

import json

import pytest
from django.test import override_settings
from django.utils import timezone

from common import services
from common.event_push import event_channel
from common.tests.factories import ProjectFactory
from realtime.fanout import Hub, LocalSource, hub, redis_client
from realtime.tests.conftest import TIMEOUT, in_thread, receive


class Recorder:
    def __init__(self) -> None:
        self.offered: list[tuple[int, int]] = []

    def offer(self, project_id: int, seq: int, text: str) -> None:
        self.offered.append((project_id, seq))


def _text(project_id: int, seq: int) -> str:
    return json.dumps({"type": "task.created", "project": project_id, "seq": seq})


async def test_an_event_reaches_the_sockets_of_its_project_and_those_of_every_project():
    fanout = Hub(LocalSource())
    one, two, every = Recorder(), Recorder(), Recorder()
    await fanout.join(one, [1])
    await fanout.join(two, [2, 3])
    await fanout.join(every, None)

    fanout.deliver(1, _text(1, 7))
    fanout.deliver(3, _text(3, 1))

    assert one.offered == [(1, 7)]
    assert two.offered == [(3, 1)]
    assert every.offered == [(1, 7), (3, 1)]


async def test_a_socket_that_leaves_a_project_gets_nothing_more_of_it():
    fanout = Hub(LocalSource())
    socket, every = Recorder(), Recorder()
    await fanout.join(socket, [1, 2])
    await fanout.join(every, None)

    fanout.leave(socket, [1])
    fanout.deliver(1, _text(1, 1))
    fanout.deliver(2, _text(2, 1))
    fanout.leave(socket)
    fanout.leave(every)
    fanout.deliver(2, _text(2, 2))

    assert socket.offered == [(2, 1)]
    assert every.offered == [(1, 1), (2, 1)]
    assert fanout.by_project == {}  # nothing kept for projects nobody wants


@pytest.mark.django_db(transaction=True)
async def test_the_sockets_of_a_process_share_one_subscription(connect):
    project = await in_thread(ProjectFactory)()
    sockets = [await connect(), await connect(f"projects={project.id}"), await connect()]
    source = hub().source

    await in_thread(services.task_create)(
        actor=None, project=project, title="t", due_date=timezone.now()
    )

    assert [(await receive(socket))["seq"] for socket in sockets] == [1, 1, 1]
    assert source.task is not None and not source.task.done()
    assert len(hub().everywhere) == 2 and len(hub().by_project[project.id]) == 1


@pytest.mark.django_db(transaction=True)
async def test_the_push_is_one_json_text_on_the_projects_own_channel(settings):
    project = await in_thread(ProjectFactory)()
    pubsub = redis_client(settings.CHANNEL_REDIS_URL).pubsub()
    await pubsub.subscribe(event_channel(project.id))
    await pubsub.get_message(timeout=TIMEOUT)  # the subscription's confirmation

    await in_thread(services.task_create)(
        actor=None, project=project, title="t", due_date=timezone.now()
    )
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=TIMEOUT)
    await pubsub.aclose()

    assert message is not None
    envelope = json.loads(message["data"])
    assert (envelope["type"], envelope["project"], envelope["seq"]) == (
        "task.created",
        project.id,
        1,
    )


@pytest.mark.django_db(transaction=True)
async def test_without_redis_events_reach_the_sockets_of_this_process(connect):
    with override_settings(CHANNEL_REDIS_URL=""):
        project = await in_thread(ProjectFactory)()
        socket = await connect()
        await in_thread(services.task_create)(
            actor=None, project=project, title="local", due_date=timezone.now()
        )
        event = await receive(socket)
        await socket.disconnect(timeout=TIMEOUT)  # its place is this process's

    assert (event["type"], event["data"]["title"]) == ("task.created", "local")
