"""Realtime and membership: a socket hears a project only while its user is a member of it.

Real Redis pub/sub and PostgreSQL; absence is proven by a later sentinel event that does arrive.
"""

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from common.domain import memberships, services
from common.tests.factories import ProjectFactory, UserFactory
from realtime import fanout
from realtime.tests.conftest import TIMEOUT, in_thread, receive

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def bob_socket(connect):
    bob = await in_thread(UserFactory)(username="bob")
    return bob, lambda query="": connect(query, token=str(AccessToken.for_user(bob)))


def task_in(project, title: str = "t"):
    return in_thread(services.task_create)(
        actor=None, project=project, title=title, due_date=timezone.now()
    )


async def test_a_non_member_receives_nothing_of_the_project(user, bob_socket):
    bob, connect_bob = bob_socket
    secret = await in_thread(ProjectFactory)(owner=user)
    shared = await in_thread(ProjectFactory)(owner=user, members=[(bob, "viewer")])
    socket = await connect_bob()

    await task_in(secret, "not for bob")
    await task_in(shared, "sentinel")

    event = await receive(socket)
    assert (event["project"], event["data"]["title"]) == (shared.id, "sentinel")


async def test_asking_for_a_project_of_others_is_unsubscribed_and_nothing_of_it_comes(
    user, bob_socket
):
    bob, connect_bob = bob_socket
    secret = await in_thread(ProjectFactory)(owner=user)
    shared = await in_thread(ProjectFactory)(owner=user, members=[bob])
    socket = await connect_bob(f"projects={secret.id},{shared.id}&since={secret.id}:0")

    assert await receive(socket) == {"type": "unsubscribed", "project": secret.id}
    await task_in(secret)
    await task_in(shared, "sentinel")
    assert (await receive(socket))["project"] == shared.id


async def test_a_member_removed_while_connected_gets_unsubscribed_and_nothing_more(
    user, bob_socket
):
    bob, connect_bob = bob_socket
    project = await in_thread(ProjectFactory)(owner=user, members=[bob])
    sentinel = await in_thread(ProjectFactory)(owner=user, members=[bob])
    socket = await connect_bob()

    await in_thread(memberships.membership_remove)(actor=user, project=project, user=bob)
    await task_in(project, "after the removal")
    await task_in(sentinel, "sentinel")

    assert await receive(socket) == {"type": "unsubscribed", "project": project.id}
    assert (await receive(socket))["data"]["title"] == "sentinel"


async def test_a_member_added_while_connected_hears_the_project_from_member_added_on(
    user, bob_socket
):
    bob, connect_bob = bob_socket
    project = await in_thread(ProjectFactory)(owner=user)
    socket = await connect_bob()
    await task_in(project, "before bob")

    await in_thread(memberships.membership_add)(actor=user, project=project, user=bob)
    await task_in(project, "after bob")

    added = await receive(socket)
    assert (added["type"], added["data"]["username"]) == ("member.added", "bob")
    assert (await receive(socket))["data"]["title"] == "after bob"
    assert added["seq"] == 2  # after the task made before bob, which did not come


async def test_a_project_created_while_connected_is_its_creators(bob_socket):
    bob, connect_bob = bob_socket
    socket = await connect_bob()

    project = await in_thread(services.project_create)(actor=bob, name="Bob's")
    await task_in(project, "his first task")

    created = await receive(socket)
    assert (created["type"], created["seq"]) == ("project.created", 1)
    assert (await receive(socket))["data"]["title"] == "his first task"


async def test_a_user_deactivated_while_connected_is_closed_with_4401(bob_socket, monkeypatch):
    monkeypatch.setattr(fanout, "ACTIVE_CHECK_SECONDS", 0.2)
    bob, connect_bob = bob_socket
    socket = await connect_bob()

    await in_thread(services.user_deactivate)(user=bob)

    closed = await socket.receive_output(timeout=TIMEOUT)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
