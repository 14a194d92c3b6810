"""A tour of the local page in a real browser, while a second user writes through the API.

The page's browser test and `make evidence` both take it: Chromium (Debian's, driven by
Playwright) signs in as the demo user and watches, while another member of the project writes
over REST; every step waits until the page shows that write live, and fails if it does not.
`make evidence` keeps a screenshot of each step.
"""

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
WAIT_MS = 15_000  # for each thing the page must show; a live event takes milliseconds
OTHER_USER = "bob"  # the second client: another member of the project, writing over REST

ScreenshotPath = Callable[[str], Path]  # a step's name -> where its screenshot goes


@dataclass
class TourResult:
    """What the tour saw, for its callers' own checks."""

    token: str  # the page's access token: it must show in no URL and no log
    urls: list[str] = field(default_factory=list)  # every URL the page opened, sockets too
    sockets: list[str] = field(default_factory=list)  # the websocket URLs, in order
    problems: list[str] = field(default_factory=list)  # console errors, uncaught exceptions
    log: list[dict] = field(default_factory=list)  # the live log's events, oldest first
    tasks: dict[str, dict] = field(default_factory=dict)  # title -> task, as the API ends up
    screenshots: list[Path] = field(default_factory=list)


def make_user(env: Mapping[str, str], username: str) -> str:
    """A user the run's database knows, made as the README says; answers its new password."""
    password = secrets.token_urlsafe(12)
    made = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=ROOT,
        env={
            **env,
            "DEBUG": "true",
            "DJANGO_SUPERUSER_USERNAME": username,
            "DJANGO_SUPERUSER_PASSWORD": password,
            "DJANGO_SUPERUSER_EMAIL": f"{username}@taskwire.local",
        },
        capture_output=True,
        text=True,
    )
    if made.returncode:
        raise RuntimeError(f"createsuperuser {username}: {made.stderr or made.stdout}")
    return password


def take_tour(
    base: str,
    demo_password: str,
    other_password: str,
    screenshot_path: ScreenshotPath | None = None,
) -> TourResult:
    """Drive the page at `base` as `demo` while OTHER_USER (see make_user) writes over REST."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright, httpx.Client(base_url=base, timeout=30) as other:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            context = browser.new_context(
                viewport={"width": 1440, "height": 900}, locale="en-GB", timezone_id="UTC"
            )
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            tour = _Tour(page, expect, other, base, screenshot_path)
            return tour.run(demo_password, other_password)
        finally:
            browser.close()


class _Tour:
    def __init__(
        self, page, expect, other: httpx.Client, base: str, path: ScreenshotPath | None
    ) -> None:
        self.page, self.expect, self.other, self.base = page, expect, other, base
        self.screenshot_path = path
        self.result = TourResult(token="")
        page.on("request", lambda request: self.result.urls.append(request.url))
        page.on("websocket", self._socket_opened)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.result.problems.append(f"uncaught: {error}"))

    def _socket_opened(self, socket) -> None:
        self.result.urls.append(socket.url)
        self.result.sockets.append(socket.url)

    def _console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.result.problems.append(f"console {message.type}: {message.text}")

    def run(self, demo_password: str, other_password: str) -> TourResult:
        self._sign_in(demo_password, other_password)
        project = self._added_to_a_project()
        self._create_a_task_on_the_page()
        self._watch_the_other_user_write(project)
        self._resume_after_a_lost_socket()
        self._edit_a_task_on_the_page()
        self._watch_a_delete()
        self._removed_from_the_project(project)
        self.result.log = self._log()
        self.result.tasks = self._tasks_over_rest(project)
        return self.result

    # --- the steps ------------------------------------------------------------------------------

    def _sign_in(self, password: str, other_password: str) -> None:
        page = self.page
        page.goto(f"{self.base}/")
        self.expect(page.locator("#app-view")).to_be_hidden()
        page.fill("#sign-in [name=username]", "demo")
        page.fill("#sign-in [name=password]", password)
        self.shoot("1-sign-in")
        with page.expect_response(lambda r: r.url.endswith("/auth/token/")) as answer:
            page.click("#sign-in button[type=submit]")
        self.result.token = answer.value.json()["access"]
        self.expect(page.locator("#whoami")).to_have_text("signed in as demo")
        self.expect(page.locator("#sign-in-view")).to_be_hidden()
        self.expect(page.locator("#connection")).to_have_text("live")
        credentials = {"username": OTHER_USER, "password": other_password}
        token = self.other.post("/auth/token/", json=credentials)
        self.other.headers["Authorization"] = f"Bearer {token.raise_for_status().json()['access']}"

    def _added_to_a_project(self) -> dict:
        """The other user makes a project with a task and adds demo: it appears, live."""
        project = self._write("POST", "/projects/", {"name": "Apollo", "description": "Moon"})
        self._write(
            "POST",
            "/tasks/",
            {
                "project": project["id"],
                "title": "Build the rocket",
                "due_date": "2030-07-16T13:32:00Z",
                "assignee": OTHER_USER,
            },
        )
        self._write("POST", f"/projects/{project['id']}/members/", {"username": "demo"})
        button = self.page.locator(f'#projects button[data-project="{project["id"]}"]')
        self.expect(button).to_contain_text("Apollo")
        self._expect_logged("member.added", OTHER_USER, "demo as member")
        button.click()
        self.expect(self._row("Build the rocket")).to_be_visible()
        return project

    def _create_a_task_on_the_page(self) -> None:
        page = self.page
        assignee = page.locator("#task-form [name=assignee] option[value=demo]")
        self.expect(assignee).to_have_count(1)  # the members have loaded
        page.fill("#task-form [name=title]", "Write the launch checklist")
        page.fill("#task-form [name=description]", "Everything, twice.")
        page.select_option("#task-form [name=assignee]", "demo")
        page.fill("#task-form [name=due_date]", "2030-07-15T09:00")
        page.click("#task-save")
        self.expect(self._row("Write the launch checklist")).to_contain_text("demo")
        self._expect_logged("task.created", "demo", "Write the launch checklist")
        self.shoot("2-project-and-own-task")

    def _watch_the_other_user_write(self, project: dict) -> None:
        rocket = self._task_id("Build the rocket")
        self._write("PATCH", f"/tasks/{rocket}/", {"status": "in_progress"})
        self._write(
            "POST",
            "/tasks/",
            {"project": project["id"], "title": "Fuel the tanks", "due_date": "2030-07-16T08:00"},
        )
        self._write("POST", f"/tasks/{rocket}/comments/", {"content": "Stage one is stacked."})
        row = self._row("Build the rocket")
        self.expect(row.locator(".status")).to_have_text("in progress")
        self.expect(row.locator("td").nth(5)).to_have_text("1")  # the comment count
        self.expect(self._row("Fuel the tanks")).to_be_visible()
        self._expect_logged("task.updated", OTHER_USER, "Build the rocket")
        self._expect_logged("task.created", OTHER_USER, "Fuel the tanks")
        self._expect_logged("comment.created", OTHER_USER, "Stage one is stacked.")
        self.shoot("3-live-writes-of-another-user")

    def _resume_after_a_lost_socket(self) -> None:
        """The socket drops; a write made meanwhile arrives on the next one (`?since=`)."""
        page = self.page
        page.evaluate("state.socket.close()")  # as a network drop would
        self.expect(page.locator("#connection")).to_have_text("offline")
        fuel = self._task_id("Fuel the tanks")
        self._write("PATCH", f"/tasks/{fuel}/", {"assignee": OTHER_USER})
        self.expect(page.locator("#connection")).to_have_text("live")
        self.expect(self._row("Fuel the tanks")).to_contain_text(OTHER_USER)
        self._expect_logged("task.updated", OTHER_USER, f"Fuel the tanks”: pending, {OTHER_USER}")

    def _edit_a_task_on_the_page(self) -> None:
        page = self.page
        self._row("Fuel the tanks").get_by_role("button", name="Edit").click()
        self.expect(page.locator("#task-form-title")).to_have_text(
            f"Edit task #{self._task_id('Fuel the tanks')}"
        )
        page.select_option("#task-form [name=status]", "completed")
        self.shoot("4-editing-a-task")
        page.click("#task-save")
        self.expect(self._row("Fuel the tanks").locator(".status")).to_have_text("completed")
        self._expect_logged("task.updated", "demo", "Fuel the tanks”: completed")

    def _watch_a_delete(self) -> None:
        checklist = self._task_id("Write the launch checklist")
        self._write("DELETE", f"/tasks/{checklist}/")
        self.expect(self._row("Write the launch checklist")).to_have_count(0)
        self._expect_logged("task.deleted", OTHER_USER, f"task #{checklist}")
        self.shoot("5-after-a-delete")

    def _removed_from_the_project(self, project: dict) -> None:
        """The other user removes demo: the socket says `unsubscribed`, the project goes."""
        self._write("DELETE", f"/projects/{project['id']}/members/demo/")
        button = self.page.locator(f'#projects button[data-project="{project["id"]}"]')
        self.expect(button).to_have_count(0)
        self.expect(self.page.locator("#project-title")).to_have_text("Pick a project")
        notice = self.page.locator('#log li[data-type="unsubscribed"]', has_text="Apollo")
        self.expect(notice).to_be_visible()
        self.shoot("6-removed-from-the-project")

    # --- helpers --------------------------------------------------------------------------------

    def shoot(self, step: str) -> None:
        if self.screenshot_path is not None:
            path = self.screenshot_path(step)
            self.page.screenshot(path=path, full_page=True, animations="disabled")
            self.result.screenshots.append(path)

    def _write(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.other.request(method, path, json=body)
        if not response.is_success:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else {}

    def _row(self, title: str):
        return self.page.locator("#tasks tbody tr", has_text=title)

    def _task_id(self, title: str) -> int:
        return int(self._row(title).get_attribute("data-task") or "0")

    def _expect_logged(self, type: str, actor: str, text: str) -> None:
        line = self.page.locator(
            f'#log li[data-type="{type}"][data-actor="{actor}"]', has_text=text
        )
        self.expect(line.first).to_be_visible()

    def _log(self) -> list[dict]:
        script = "lines => lines.map(line => ({...line.dataset, text: line.innerText}))"
        return list(reversed(self.page.eval_on_selector_all("#log li.event", script)))

    def _tasks_over_rest(self, project: dict) -> dict[str, dict]:
        listed = self.other.get("/tasks/", params={"project": project["id"]}).json()
        return {task["title"]: task for task in listed["results"]}
