"""The fan-out: one subscription per process, each event handed to the sockets of its project."""

import json

import pytest
from django.test import override_settings
from django.utils import timezone

from common.domain import services
from common.infra.event_push import event_batch_channel, event_channel, event_channel_pattern
from common.tests.factories import ProjectFactory
from realtime import fanout as fanout_module
from realtime.fanout import Hub, LocalSource, hub, redis_client
from realtime.tests.conftest import TIMEOUT, in_thread, receive


class Recorder:
    """A socket, as the hub sees one: its user, what it asked for, what it was handed."""

    def __init__(self, username: str = "alice", wants=lambda project_id: True) -> None:
        self.username, self.wants = username, wants
        self.password_claim = "claim"
        self.revoked = False
        self.offered: list[tuple[int, int]] = []
        self.started: list[int] = []
        self.left: list[int] = []

    def offer(self, project_id: int, seq: int, text: str, *, starts: bool = False) -> None:
        self.offered.append((project_id, seq))
        if starts:
            self.started.append(project_id)

    def unsubscribed(self, project_id: int) -> None:
        self.left.append(project_id)

    def revoke(self) -> None:
        self.revoked = True


def _text(project_id: int, seq: int, type: str = "task.created", **fields) -> str:
    return json.dumps({"type": type, "project": project_id, "seq": seq, **fields})


def _member(type: str, project_id: int, seq: int, username: str) -> str:
    return _text(project_id, seq, type, data={"username": username, "role": "member"})


async def test_an_event_reaches_only_the_sockets_that_joined_its_project():
    fanout = Hub(LocalSource())
    one, two = Recorder("alice"), Recorder("bob")
    fanout.join(one, [1])
    fanout.join(two, [2, 3])

    fanout.deliver(1, _text(1, 7))
    fanout.deliver(3, _text(3, 1))
    fanout.deliver(4, _text(4, 1))  # nobody's

    assert one.offered == [(1, 7)]
    assert two.offered == [(3, 1)]


async def test_a_socket_that_leaves_a_project_gets_nothing_more_of_it():
    fanout = Hub(LocalSource())
    socket = Recorder()
    await fanout.watch(socket)
    fanout.join(socket, [1, 2])

    fanout.leave(socket, [1])
    fanout.deliver(1, _text(1, 1))
    fanout.deliver(2, _text(2, 1))
    fanout.leave(socket)
    fanout.deliver(2, _text(2, 2))

    assert socket.offered == [(2, 1)]
    assert fanout.by_project == {}
    assert fanout.by_user == {}


async def test_a_member_added_is_joined_from_that_event_on_and_only_where_they_asked():
    fanout = Hub(LocalSource())
    anywhere, only_two, other = Recorder("carol"), Recorder("carol", {2}.__contains__), Recorder()
    for socket in (anywhere, only_two, other):
        await fanout.watch(socket)

    fanout.deliver(1, _text(1, 4))  # before: carol is no member of 1
    fanout.deliver(1, _member("member.added", 1, 5, "carol"))
    fanout.deliver(1, _text(1, 6))

    assert anywhere.offered == [(1, 5), (1, 6)]
    assert anywhere.started == [1]
    assert only_two.offered == []
    assert other.offered == []


async def test_a_project_created_is_its_creators_from_its_first_event():
    fanout = Hub(LocalSource())
    creator = Recorder("dave")
    await fanout.watch(creator)

    fanout.deliver(9, _text(9, 1, "project.created", actor="dave"))
    fanout.deliver(9, _text(9, 2))

    assert creator.offered == [(9, 1), (9, 2)]
    assert creator.started == [9]


async def test_a_member_removed_gets_unsubscribed_in_place_of_the_event_and_nothing_more():
    fanout = Hub(LocalSource())
    removed, stays = Recorder("bob"), Recorder("alice")
    for socket in (removed, stays):
        await fanout.watch(socket)
        fanout.join(socket, [1])

    fanout.deliver(1, _member("member.removed", 1, 3, "bob"))
    fanout.deliver(1, _text(1, 4))

    assert removed.offered == []
    assert removed.left == [1]
    assert stays.offered == [(1, 3), (1, 4)]


@pytest.mark.django_db(transaction=True)
async def test_the_user_check_leaves_alone_a_user_whose_socket_came_while_it_read(monkeypatch):
    fanout = Hub(LocalSource())
    alice, bob, carol = Recorder("alice"), Recorder("bob"), Recorder("carol")
    fanout.by_user["alice"].add(alice)
    fanout.by_user["bob"].add(bob)

    async def claims_read_while_carol_connects(usernames: list[str]) -> dict[str, str]:
        fanout.by_user["carol"].add(carol)  # watched during the read, not in `usernames`
        return {"alice": "claim"}  # bob: deactivated

    monkeypatch.setattr(fanout_module, "_active_password_claims", claims_read_while_carol_connects)
    await fanout._check_once()

    assert (alice.revoked, bob.revoked, carol.revoked) == (False, True, False)
    assert set(fanout.by_user) == {"alice", "carol"}


async def test_the_sockets_of_a_process_share_one_subscription(connect):
    project = await in_thread(ProjectFactory)(owner__username="alice")
    sockets = [await connect(), await connect(f"projects={project.id}"), await connect()]
    other = await in_thread(ProjectFactory)()  # alice is no member of it
    source = hub().source

    await in_thread(services.task_create)(
        actor=None, project=project, title="t", due_date=timezone.now()
    )

    assert [(await receive(socket))["seq"] for socket in sockets] == [1, 1, 1]
    assert source.task is not None
    assert not source.task.done()
    assert len(hub().by_user["alice"]) == 3
    assert len(hub().by_project[project.id]) == 3
    assert other.id not in hub().by_project


@pytest.mark.django_db(transaction=True)
async def test_the_push_is_one_json_text_on_the_projects_own_channel(settings):
    project = await in_thread(ProjectFactory)(owner__username="alice")
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
async def test_a_push_of_many_events_is_one_message_and_each_event_reaches_its_projects_sockets(
    connect, settings
):
    from scheduled.summaries import _store

    mine = [await in_thread(ProjectFactory)(owner__username="alice") for _ in range(3)]
    other = await in_thread(ProjectFactory)()  # alice is no member of it
    socket = await connect()
    pubsub = redis_client(settings.CHANNEL_REDIS_URL).pubsub()
    await pubsub.subscribe(event_batch_channel())
    await pubsub.psubscribe(event_channel_pattern())
    for _ in range(2):
        await pubsub.get_message(timeout=TIMEOUT)  # the subscriptions' confirmations

    await in_thread(_store)(timezone.now(), timezone.localdate())

    events = [await receive(socket) for _ in mine]
    batch = await pubsub.get_message(ignore_subscribe_messages=True, timeout=TIMEOUT)
    single = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
    await pubsub.aclose()
    assert sorted((e["type"], e["project"], e["seq"]) for e in events) == [
        ("summary.generated", project.id, 1) for project in mine
    ]
    assert batch is not None
    assert batch["channel"].decode() == event_batch_channel()
    lines = [json.loads(line) for line in batch["data"].decode().split("\n")]
    assert sorted(event["project"] for event in lines) == [*(p.id for p in mine), other.id]
    assert single is None  # nothing on the projects' own channels
    assert await socket.receive_nothing(timeout=0.5)  # nor the other project's, for alice


@pytest.mark.django_db(transaction=True)
async def test_without_redis_events_reach_the_sockets_of_this_process(connect):
    with override_settings(CHANNEL_REDIS_URL=""):
        project = await in_thread(ProjectFactory)(owner__username="alice")
        socket = await connect()
        await in_thread(services.task_create)(
            actor=None, project=project, title="local", due_date=timezone.now()
        )
        event = await receive(socket)
        await socket.disconnect(timeout=TIMEOUT)  # its place is this process's

    assert (event["type"], event["data"]["title"]) == ("task.created", "local")
