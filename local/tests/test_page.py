"""The page at `/`: served by the local gateway, and driven in a real browser.

The browser test runs `make run` in its services mode (PostgreSQL, Redis, RabbitMQ, a moto
server), signs in on the page in Debian's Chromium (through Playwright) and takes the tour of
local.page_tour while a second user writes over REST: every write must show on the page, live,
in order, and the page's token in no URL and no log line. It skips only without Chromium
(`apt-get install chromium`; CI installs it).
"""

import os
import re
from html.parser import HTMLParser

import httpx
import pytest
from asgiref.sync import async_to_sync

from local import page_tour
from local.routes import route
from local.tests import test_make_run
from local.tests.test_make_run import KEPT, Run

services = test_make_run.services  # the fixture: a fresh database, Redis, RabbitMQ, moto

needs_chromium = pytest.mark.skipif(
    not page_tour.CHROMIUM.exists(), reason=f"no {page_tour.CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture
def page_run(tmp_path, services):
    run = Run(tmp_path, services)
    yield run
    print(run.output)  # pytest shows it when the test failed
    run.interrupt()


@needs_chromium
@pytest.mark.parametrize("services", ["services"], indirect=True)
def test_the_page_shows_another_members_writes_live(page_run, services, tmp_path):
    password = page_run.wait_for(r"demo user: demo / (\S+)").group(1)
    page_run.wait_for(r"Uvicorn running on")
    env = {name: os.environ[name] for name in KEPT if name in os.environ}
    other_password = page_tour.make_user(
        {**env, **services, "VAR_DIR": str(tmp_path / "var")}, page_tour.OTHER_USER
    )
    base = f"http://127.0.0.1:{page_run.port}"

    result = page_tour.take_tour(
        base, password, other_password, lambda step: tmp_path / f"{step}.png"
    )

    assert result.problems == []  # no console error, no CSP violation, no uncaught exception
    seen = [(line["type"], line["actor"], int(line["seq"])) for line in result.log]
    # demo hears the project from the member.added that let them in (bob's first two events,
    # project.created and task.created, were before): each event once, in seq order.
    assert seen == [
        ("member.added", "bob", 3),
        ("task.created", "demo", 4),
        ("task.updated", "bob", 5),
        ("task.created", "bob", 6),
        ("comment.created", "bob", 7),
        ("task.updated", "bob", 8),  # made while the socket was down, replayed on the next
        ("task.updated", "demo", 9),
        ("task.deleted", "bob", 10),
    ]
    project = result.log[0]["project"]
    socket_url = f"ws://127.0.0.1:{page_run.port}/ws/notifications/"
    assert result.sockets == [socket_url, f"{socket_url}?since={project}:7"]
    # The page's own writes went through the API: bob reads them back.
    assert sorted(result.tasks) == ["Build the rocket", "Fuel the tanks"]  # the checklist went
    assert result.tasks["Fuel the tanks"]["status"] == "completed"
    assert result.tasks["Fuel the tanks"]["assignee"] == "bob"
    assert result.tasks["Build the rocket"]["comment_count"] == 1
    # The token only ever travelled in headers and the socket's subprotocol.
    assert result.token
    assert not [url for url in result.urls if result.token in url]
    assert result.token not in page_run.output
    assert re.search(r'"GET / HTTP/1.1" 200', page_run.output)
    for shot in result.screenshots:
        assert shot.read_bytes().startswith(b"\x89PNG"), shot
    assert len(result.screenshots) == 6


@needs_chromium
def test_the_page_renews_its_token_and_socket_before_the_token_expires(tmp_path):
    run = Run(tmp_path, {"JWT_ACCESS_MINUTES": "1"})  # embedded; the page refreshes after 5 s
    try:
        password = run.wait_for(r"demo user: demo / (\S+)").group(1)
        run.wait_for(r"Uvicorn running on")
        _renew_on_the_page(f"http://127.0.0.1:{run.port}", password)
    finally:
        print(run.output)
        run.interrupt()


def _renew_on_the_page(base: str, password: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=page_tour.WAIT_MS)
    with sync_playwright() as playwright, httpx.Client(base_url=base) as demo:
        browser = playwright.chromium.launch(executable_path=str(page_tour.CHROMIUM))
        page = browser.new_page()
        sockets, urls, tokens = [], [], []
        page.on("websocket", lambda socket: sockets.append(socket))
        page.on("request", lambda request: urls.append(request.url))
        page.on(
            "response",
            lambda answer: "/auth/token/" in answer.url and tokens.append(answer.json()["access"]),
        )
        page.goto(f"{base}/")
        page.fill("#sign-in [name=username]", "demo")
        page.fill("#sign-in [name=password]", password)
        page.click("#sign-in button[type=submit]")
        expect(page.locator("#connection")).to_have_text("live")
        token = demo.post("/auth/token/", json={"username": "demo", "password": password})
        demo.headers["Authorization"] = f"Bearer {token.json()['access']}"
        project = demo.post("/projects/", json={"name": "Long session"}).json()
        page.click(f'#projects button[data-project="{project["id"]}"]')
        expect(page.locator("#log li[data-type='project.created']")).to_have_count(1)

        # 5 s after signing in the page refreshes, then opens a socket with the fresh token,
        # resuming after project.created, and closes the first.
        page.wait_for_function(
            "() => state.socket && state.socket.readyState === WebSocket.OPEN && !state.previous"
            " && state.socket.url.includes('since=')"
        )
        assert [socket.url.split("?")[1:] for socket in sockets] == [
            [],
            [f"since={project['id']}:1"],
        ]
        if not sockets[0].is_closed():
            sockets[0].wait_for_event("close")
        page.fill("#task-form [name=title]", "Written with the fresh token")
        page.click("#task-save")
        expect(page.locator("#log li[data-type='task.created']")).to_contain_text("fresh token")
        expect(page.locator("#connection")).to_have_text("live")
        browser.close()
    assert len(tokens) >= 2  # signed in, then refreshed
    assert len(set(tokens)) == len(tokens)
    assert not [url for url in urls for token in tokens if token in url]


def test_the_root_path_goes_to_the_local_page():
    assert route("/") == "local"
    assert route("/local/page/app.js") == "local"


def _gateway() -> httpx.AsyncClient:
    from local.run import build_gateway

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_gateway()), base_url="http://testserver"
    )


@pytest.fixture
def gateway(settings):
    settings.LOCAL_MODE = True
    return _gateway()


async def _get_all(gateway: httpx.AsyncClient, *requests: tuple[str, str]) -> list:
    async with gateway as client:
        return [await client.request(method, path) for method, path in requests]


def test_the_page_is_static_files_under_a_policy_that_allows_no_inline_script(gateway):
    page, script, style, missing, post = async_to_sync(_get_all)(
        gateway,
        ("GET", "/"),
        ("GET", "/local/page/app.js"),
        ("GET", "/local/page/app.css"),
        ("GET", "/local/page/settings.py"),
        ("POST", "/"),
    )
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    tags = _Tags()
    tags.feed(page.text)
    assert tags.scripts == ["/local/page/app.js"]  # each script a file, none inline
    assert tags.inline_handlers == []
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert 'new WebSocket(url, ["bearer", token])' in script.text  # the token is no URL's
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not found."})
    assert 400 <= post.status_code < 500
    assert post.headers["content-type"] == "application/json"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []
        self.inline_handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes.get("src"))
        self.inline_handlers += [name for name in attributes if name.startswith("on")]


def test_there_is_no_page_outside_local_mode(settings):
    settings.LOCAL_MODE = False
    (page,) = async_to_sync(_get_all)(_gateway(), ("GET", "/"))
    assert (page.status_code, page.json()) == (404, {"detail": "Not found."})
