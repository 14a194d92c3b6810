"""The activity feed (GET /projects/{id}/events/) is the websocket's text, byte for byte."""

import pytest

from common.domain import services
from common.tests.factories import ProjectFactory
from functions.projects.tests.test_activity import create_task, feed
from realtime.tests.conftest import TIMEOUT, in_thread

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_feed_is_the_websockets_text_byte_for_byte_live_and_replayed(connect, user):
    project = await in_thread(ProjectFactory)(owner=user)
    live_socket = await connect()
    task = await in_thread(create_task)(project, "Ünïcode ✓")
    await in_thread(services.task_update)(actor=user, task=task, status="in_progress")
    await in_thread(services.comment_create)(actor=user, task=task, author="alice", content="hi")
    live = [await live_socket.receive_from(timeout=TIMEOUT) for _ in range(3)]
    replay_socket = await connect(f"since={project.id}:0")
    replayed = [await replay_socket.receive_from(timeout=TIMEOUT) for _ in range(3)]

    response = await in_thread(feed)(user, project.id)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert live == replayed
    assert response.content.decode() == '{"results":[' + ",".join(live) + '],"next":null}'
