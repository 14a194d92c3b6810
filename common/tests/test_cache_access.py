"""The list cache and membership: a page is shown only to a caller who may see every row on it.

Every read goes through the projects or tasks function's whole ASGI application, so a hit is
answered by the hit path in front of Django, as deployed; a miss by Django.
"""

import time
from datetime import timedelta

import httpx
import pytest
from asgiref.sync import async_to_sync
from rest_framework_simplejwt.tokens import AccessToken

from common.domain import memberships
from common.tests.factories import ProjectFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _hosts(settings):
    settings.ALLOWED_HOSTS = ["testserver"]


def read(user, path: str) -> httpx.Response:
    from functions.projects.handler import application as projects
    from functions.tasks.handler import application as tasks

    app = projects if path.startswith("/projects/") else tasks
    headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path, headers=headers)

    return async_to_sync(get)()


@pytest.fixture
def team():
    """alice owns Apollo (with bob, a viewer) and Gemini; carol is in neither."""
    alice, bob, carol = (UserFactory(username=name) for name in ("alice", "bob", "carol"))
    apollo = ProjectFactory(name="Apollo", owner=alice, members=[(bob, "viewer")])
    gemini = ProjectFactory(name="Gemini", owner=alice)
    TaskFactory(project=apollo, title="Launch")
    TaskFactory(project=gemini, title="Dock")
    return alice, bob, carol, apollo, gemini


def titles(response: httpx.Response) -> list[str]:
    return [row.get("title") or row["name"] for row in response.json()["results"]]


def test_members_of_a_project_share_its_task_pages_through_the_hit_path(team):
    alice, bob, _, apollo, _ = team
    path = f"/tasks/?project={apollo.id}"

    first, second = read(alice, path), read(alice, path)  # alice's second read vouches her
    bobs_first, bobs_second = read(bob, path), read(bob, path)

    assert [r.headers["x-cache"] for r in (first, second)] == ["miss", "hit"]
    # bob's first read: Django vouches for him (his memberships) and finds alice's page built
    assert [r.headers["x-cache"] for r in (bobs_first, bobs_second)] == ["hit", "hit"]
    assert bobs_second.content == first.content
    assert titles(first) == ["Launch"]


def test_a_non_member_never_gets_a_cached_page_of_the_project(team):
    alice, _, carol, apollo, _ = team
    path = f"/tasks/?project={apollo.id}"
    read(alice, path), read(alice, path)

    for attempt in range(2):  # the second time, carol is vouched for: the hit path decides
        refused = read(carol, path)
        assert (attempt, refused.status_code) == (attempt, 400)
        assert "project" in refused.json()
        mine = read(carol, "/tasks/")
        assert (attempt, mine.json()["count"], mine.json()["results"]) == (attempt, 0, [])


def test_unfiltered_pages_are_shared_only_by_readers_of_the_same_projects(team):
    alice, bob, _, _, _ = team
    for user in (alice, bob, alice, bob):  # alternately, misses and hits
        tasks, projects = read(user, "/tasks/"), read(user, "/projects/")
        if user == alice:
            assert sorted(titles(tasks)) == ["Dock", "Launch"]
            assert [(p["name"], p["role"]) for p in projects.json()["results"]] == [
                ("Apollo", "owner"),
                ("Gemini", "owner"),
            ]
        else:
            assert titles(tasks) == ["Launch"]
            assert [(p["name"], p["role"]) for p in projects.json()["results"]] == [
                ("Apollo", "viewer")
            ]
    assert read(bob, "/tasks/").headers["x-cache"] == "hit"


def test_a_removed_member_no_longer_sees_the_project_on_the_next_read(team):
    alice, bob, _, apollo, _ = team
    for path in ("/tasks/", f"/tasks/?project={apollo.id}", "/projects/"):
        read(bob, path), read(bob, path)  # cached, and bob vouched for
    assert read(bob, "/tasks/").headers["x-cache"] == "hit"

    memberships.membership_remove(actor=alice, project=apollo, user=bob)

    assert read(bob, "/tasks/").json()["results"] == []
    assert read(bob, f"/tasks/?project={apollo.id}").status_code == 400
    assert read(bob, "/projects/").json()["results"] == []


def test_an_added_member_sees_the_project_on_the_next_read(team):
    alice, _, carol, apollo, _ = team
    read(carol, "/tasks/"), read(carol, "/tasks/")
    assert read(carol, "/tasks/").headers["x-cache"] == "hit"

    memberships.membership_add(actor=alice, project=apollo, user=carol, role="viewer")

    assert titles(read(carol, "/tasks/")) == ["Launch"]
    assert titles(read(carol, f"/tasks/?project={apollo.id}")) == ["Launch"]


def test_a_token_the_hit_path_verified_is_refused_once_it_expires(team):
    from functions.tasks.handler import application as tasks

    token = AccessToken.for_user(team[0])
    token.set_exp(lifetime=timedelta(seconds=2))
    headers = {"Authorization": f"Bearer {token}"}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=tasks)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/tasks/", headers=headers)

    answers = [async_to_sync(get)() for _ in range(3)]
    time.sleep(max(0.0, token["exp"] - time.time()) + 0.1)

    assert [answer.headers["x-cache"] for answer in answers] == ["miss", "hit", "hit"]
    assert async_to_sync(get)().status_code == 401


def test_a_miss_through_the_hit_path_reads_the_versions_once_and_is_still_fresh(team, monkeypatch):
    from common.infra.cache import pages
    from common.infra.cache.versions import bump

    alice, *_ = team
    read(alice, "/tasks/"), read(alice, "/tasks/")  # the versions exist, the reader is vouched
    reads: list[object] = []
    original = pages.read_versions
    monkeypatch.setattr(
        pages, "read_versions", lambda names: reads.append(names) or original(names)
    )
    bump(("tasks",))  # as a write does: the next read is a miss
    TaskFactory(project=team[3], title="After the bump")

    answer = read(alice, "/tasks/")

    assert answer.headers["x-cache"] == "miss"
    assert "After the bump" in titles(answer)
    assert reads == []  # Django took the versions the hit path had read
    assert read(alice, "/tasks/").headers["x-cache"] == "hit"
