"""Every endpoint of every function, for a non-member and each role, with each method.

One test per (endpoint, method, role): the status code the contract gives (CONTRACT section
1b), and on a refusal, every domain table exactly as it was. A second test walks the four
functions' URL confs and fails when an endpoint is missing from the matrix (or the matrix
names one that no longer exists).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module

from django.test import override_settings
from django.urls import URLPattern, URLResolver
from django.utils import timezone
from rest_framework.test import APITestCase
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from common.domain.models import (
    Comment,
    Event,
    Membership,
    Project,
    SummaryReport,
    Task,
    Webhook,
    WebhookDelivery,
)
from common.tests.factories import (
    CommentFactory,
    MembershipFactory,
    ProjectFactory,
    SummaryReportFactory,
    TaskFactory,
    UserFactory,
)

ROLES = ("nonmember", "viewer", "member", "admin", "owner")
FUNCTIONS = ("projects", "tasks", "comments", "auth")
DUE = "2031-01-01T00:00:00Z"
TABLES = (Project, Task, Comment, Membership, SummaryReport, Event, Webhook, WebhookDelivery)


@dataclass(frozen=True)
class Case:
    """A request (`{project}`, `{task}`, `{target}` filled in) and its code for each of ROLES."""

    function: str
    path: str
    codes: tuple[int, int, int, int, int]
    body: Callable[["AccessMatrixTests", str], dict] | None = field(default=None)


def _same(code: int) -> tuple[int, int, int, int, int]:
    return (code,) * 5


READ = (404, 200, 200, 200, 200)
WRITE_TASKS = (404, 403, 200, 200, 200)
ADMIN = (404, 403, 403, 200, 200)
P = "/projects/{project}/"
T = "/tasks/{task}/"
MEMBER = P + "members/{target}/"
HOOKS = P + "webhooks/"
HOOK = HOOKS + "{webhook}/"


def _task_body(test: "AccessMatrixTests", role: str) -> dict:
    return {"project": test.project.id, "title": "Written", "due_date": DUE}


MATRIX: dict[tuple[str, str], Case] = {
    ("projects/", "GET"): Case("projects", "/projects/", _same(200)),
    ("projects/", "POST"): Case("projects", "/projects/", _same(201), lambda t, r: {"name": "N"}),
    ("projects/<int:pk>/", "GET"): Case("projects", P, READ),
    ("projects/<int:pk>/", "PUT"): Case("projects", P, ADMIN, lambda t, r: {"name": "Renamed"}),
    ("projects/<int:pk>/", "PATCH"): Case("projects", P, ADMIN, lambda t, r: {"description": "d"}),
    ("projects/<int:pk>/", "DELETE"): Case("projects", P, (404, 403, 403, 403, 204)),
    ("projects/<int:pk>/summaries/", "GET"): Case("projects", P + "summaries/", READ),
    ("projects/<int:pk>/members/", "GET"): Case("projects", P + "members/", READ),
    ("projects/<int:pk>/members/", "POST"): Case(
        "projects", P + "members/", (404, 403, 403, 201, 201), lambda t, r: {"username": "newbie"}
    ),
    ("projects/<int:pk>/members/<str:username>/", "GET"): Case("projects", MEMBER, READ),
    ("projects/<int:pk>/members/<str:username>/", "PATCH"): Case(
        "projects", MEMBER, ADMIN, lambda t, r: {"role": "viewer"}
    ),
    ("projects/<int:pk>/members/<str:username>/", "DELETE"): Case(
        "projects", MEMBER, (404, 403, 403, 204, 204)
    ),
    ("tasks/", "GET"): Case("tasks", "/tasks/", _same(200)),
    # A project the caller cannot see is 400 on `project`, as an unknown one is.
    ("tasks/", "POST"): Case("tasks", "/tasks/", (400, 403, 201, 201, 201), _task_body),
    ("tasks/<int:pk>/", "GET"): Case("tasks", T, READ),
    ("tasks/<int:pk>/", "PUT"): Case("tasks", T, WRITE_TASKS, _task_body),
    ("tasks/<int:pk>/", "PATCH"): Case("tasks", T, WRITE_TASKS, lambda t, r: {"title": "x"}),
    ("tasks/<int:pk>/", "DELETE"): Case("tasks", T, (404, 403, 204, 204, 204)),
    ("tasks/<int:task_pk>/comments/", "GET"): Case("comments", T + "comments/", READ),
    ("tasks/<int:task_pk>/comments/", "POST"): Case(
        "comments", T + "comments/", (404, 403, 201, 201, 201), lambda t, r: {"content": "hi"}
    ),
    ("projects/<int:pk>/events/", "GET"): Case("projects", P + "events/", READ),
    ("projects/<int:pk>/webhooks/", "GET"): Case("projects", HOOKS, ADMIN),
    # A public address (never called: nothing is delivered in this test).
    ("projects/<int:pk>/webhooks/", "POST"): Case(
        "projects", HOOKS, (404, 403, 403, 201, 201), lambda t, r: {"url": "http://93.184.216.34/"}
    ),
    ("projects/<int:pk>/webhooks/<int:wid>/", "GET"): Case("projects", HOOK, ADMIN),
    ("projects/<int:pk>/webhooks/<int:wid>/", "PATCH"): Case(
        "projects", HOOK, ADMIN, lambda t, r: {"active": False}
    ),
    ("projects/<int:pk>/webhooks/<int:wid>/", "DELETE"): Case(
        "projects", HOOK, (404, 403, 403, 204, 204)
    ),
    ("projects/<int:pk>/webhooks/<int:wid>/deliveries/", "GET"): Case(
        "projects", HOOK + "deliveries/", ADMIN
    ),
    ("projects/<int:pk>/webhooks/<int:wid>/deliveries/<int:did>/redeliver/", "POST"): Case(
        "projects", HOOK + "deliveries/{delivery}/redeliver/", (404, 403, 403, 202, 202)
    ),
    # Not about projects: the same for everyone.
    ("auth/token/", "POST"): Case(
        "auth", "/auth/token/", _same(200), lambda t, r: {"username": r, "password": "pass-word-1"}
    ),
    ("auth/token/refresh/", "POST"): Case(
        "auth",
        "/auth/token/refresh/",
        _same(200),
        lambda t, r: {"refresh": str(RefreshToken.for_user(t.users[r]))},
    ),
    ("auth/logout/", "POST"): Case(
        "auth",
        "/auth/logout/",
        _same(204),
        lambda t, r: {"refresh": str(RefreshToken.for_user(t.users[r]))},
    ),
    ("auth/me/", "GET"): Case("auth", "/auth/me/", _same(200)),
    ("healthz", "GET"): Case("auth", "/healthz", _same(200)),
    ("readyz", "GET"): Case("auth", "/readyz", _same(200)),
}


def _state() -> dict[str, list[dict]]:
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in TABLES}


class AccessMatrixTests(APITestCase):
    """The project `cls.project`: its owner, an admin, a member, a viewer, and a member `bea`
    (whom the members' endpoints change), with a task assigned to bea, a comment, a report."""

    @classmethod
    def setUpTestData(cls):
        cls.users = {role: UserFactory(username=role) for role in ROLES}
        UserFactory(username="newbie")
        cls.project = ProjectFactory(owner=cls.users["owner"])
        for role in ("viewer", "member", "admin"):
            MembershipFactory(project=cls.project, user=cls.users[role], role=role)
        bea = MembershipFactory(project=cls.project, user=UserFactory(username="bea")).user
        cls.task = TaskFactory(project=cls.project, assignee=bea)
        CommentFactory(task=cls.task)
        SummaryReportFactory(project=cls.project)
        ProjectFactory(owner=cls.users["nonmember"])  # the non-member is in a project of their own
        event = Event.objects.create(
            project_id=cls.project.id,
            seq=1,
            type="task.created",
            occurred_at=timezone.now(),
            data={},
        )
        Project.objects.filter(pk=cls.project.id).update(event_seq=1)
        cls.webhook = Webhook.objects.create(
            project=cls.project, url="http://93.184.216.34/", events=["*"], secret="whsec_AAAA"
        )
        cls.delivery = WebhookDelivery.objects.create(
            webhook=cls.webhook, event_id=event.id, status="succeeded", due_at=timezone.now()
        )

    def check(self, key: tuple[str, str], role: str) -> None:
        case, method = MATRIX[key], key[1]
        expected = case.codes[ROLES.index(role)]
        path = case.path.format(
            project=self.project.id,
            task=self.task.id,
            target="bea",
            webhook=self.webhook.id,
            delivery=self.delivery.id,
        )
        body = case.body(self, role) if case.body else None
        self.client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(self.users[role])}"
        )
        before = _state()

        with override_settings(ROOT_URLCONF=f"functions.{case.function}.urls"):
            response = getattr(self.client, method.lower())(path, body, format="json")

        self.assertEqual(response.status_code, expected, response.content)
        if expected >= 400:
            self.assertIn("project" if expected == 400 else "detail", response.json())
            self.assertEqual(_state(), before, "a refused request changed something")


def _test_name(key: tuple[str, str], role: str) -> str:
    route = re.sub(r"<\w+:(\w+)>", r"\1", key[0]).strip("/").replace("/", "_")
    return f"test_{route}_{key[1].lower()}_as_{role}"


for _key in MATRIX:
    for _role in ROLES:
        setattr(
            AccessMatrixTests,
            _test_name(_key, _role),
            lambda self, key=_key, role=_role: self.check(key, role),
        )


def _endpoints(patterns, prefix: str = "") -> set[tuple[str, str]]:
    """(route, method) of every view under `patterns`; OPTIONS and HEAD go with GET's rules."""
    found = set()
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found |= _endpoints(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "view_class", None)
            if view is None:  # a function view: common.api.health's, GET only
                found.add((route, "GET"))
                continue
            methods = {name.upper() for name in view.http_method_names if hasattr(view, name)}
            found |= {(route, method) for method in methods - {"OPTIONS", "HEAD"}}
    return found


def test_every_endpoint_of_every_function_is_in_the_matrix():
    endpoints = set()
    for function in FUNCTIONS:
        endpoints |= _endpoints(import_module(f"functions.{function}.urls").urlpatterns)

    assert endpoints - MATRIX.keys() == set(), "endpoints missing from the access matrix"
    assert MATRIX.keys() - endpoints == set(), "the matrix names endpoints that are gone"
