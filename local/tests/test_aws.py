"""deploy/aws/template.yaml: generated from the route table and Beat's schedule, valid offline.

cfn-lint checks the SAM template as written and the CloudFormation that the SAM transform
(aws-sam-translator, run here with no AWS account) makes of it. The HTTP API's routes are
checked against local.routes by modelling how an HTTP API picks a route.
"""

import json
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from celery.schedules import crontab
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from deploy.aws import generate
from local.routes import route
from scheduled.schedule import SCHEDULE

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "aws" / "template.yaml"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

# Paths of every kind the route table tells apart (README: Endpoints), and some it refuses.
PATHS = [
    "/projects/",
    "/projects/7/",
    "/projects/7/summaries/",
    "/projects/7/members/",
    "/projects/7/members/ada/",
    "/tasks/",
    "/tasks/7/",
    "/tasks/7/comments/",
    "/tasks/abc/comments/",
    "/auth/token/",
    "/auth/token/refresh/",
    "/auth/me/",
    "/healthz",
    "/readyz",
    "/admin/",
    "/admin/login/",
    "/static/admin/css/base.css",
    "/ws/notifications/",
    "/docs/",
    "/local/outbox/",
    "/static/other.css",
    "/elsewhere/",
    "/projectsx/",
    "/healthz/extra",
]


class NoPolicyLookups:
    """The SAM transform's managed-policy loader: this template names no policy to look up."""

    def load(self):
        raise AssertionError("the template names a managed policy by name: that needs AWS")


@pytest.fixture(scope="module")
def transformed(tmp_path_factory) -> dict:
    sam = yaml_parse(TEMPLATE.read_text())
    # What `sam deploy` does first: the local code folder becomes the S3 object it uploaded.
    sam["Globals"]["Function"]["CodeUri"] = "s3://taskwire-artifacts/lambda.zip"
    return transform(sam, {}, NoPolicyLookups())


def test_the_committed_template_is_generated_from_the_tables():
    assert TEMPLATE.read_text() == generate.render(), "regenerate it: make aws-template"


def test_cfn_lint_passes_on_the_sam_template():
    result = subprocess.run([CFN_LINT, TEMPLATE], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_passes_on_what_the_sam_transform_makes(transformed, tmp_path):
    output = tmp_path / "transformed.json"
    output.write_text(json.dumps(transformed))
    result = subprocess.run([CFN_LINT, output], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_function_is_its_own_lambda_with_its_mangum_handler(transformed):
    functions = {
        name: resource["Properties"]
        for name, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    handlers = {props["Handler"] for props in functions.values()}
    expected = {f"functions.{name}.handler.handler" for name in generate.lambda_functions()}
    assert handlers == expected | {"scheduled.dispatch.handler"}
    assert set(generate.lambda_functions()) == {"projects", "tasks", "comments", "auth", "admin"}
    for module in expected:  # each names a Mangum handler that exists
        module_name, attribute = module.rsplit(".", 1)
        assert callable(getattr(__import__(module_name, fromlist=[attribute]), attribute))


def _api(transformed) -> dict[str, str]:
    """HTTP API route path -> the Lambda it invokes, from the OpenAPI body SAM wrote."""
    body = transformed["Resources"]["HttpApi"]["Properties"]["Body"]
    routes = {}
    for path, methods in body["paths"].items():
        (method,) = methods.values()
        uri = method["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        routes[path] = re.search(r"\$\{(\w+)Function\.Arn\}", uri).group(1).lower()
    return routes


def _segments_match(route_path: str, path: str) -> bool:
    pattern = route_path.rstrip("/").split("/")
    parts = path.rstrip("/").split("/")  # an HTTP API matches /x/ to the route /x
    if pattern and pattern[-1] == "{proxy+}":
        head = pattern[:-1]
        return len(parts) > len(head) and _fixed_match(head, parts[: len(head)])
    return len(parts) == len(pattern) and _fixed_match(pattern, parts)


def _fixed_match(pattern: list[str], parts: list[str]) -> bool:
    return all(p == q or (p.startswith("{") and q) for p, q in zip(pattern, parts, strict=True))


def _http_api_route(routes: dict[str, str], path: str) -> str:
    """The function an HTTP API gives `path` to: a route without a greedy variable before one
    with it, then the most literal segments; nothing matching: the $default route."""
    candidates = [r for r in routes if r != "$default" and _segments_match(r, path)]
    if not candidates:
        return routes["$default"]

    def specificity(route_path: str) -> tuple:
        segments = route_path.split("/")
        return ("{proxy+}" not in route_path, sum(not s.startswith("{") for s in segments))

    return routes[max(candidates, key=specificity)]


@pytest.mark.parametrize("path", PATHS)
def test_the_http_api_routes_each_path_as_the_route_table_does(transformed, path):
    expected = route(path)
    got = _http_api_route(_api(transformed), path)
    if expected in generate.lambda_functions():
        assert got == expected
    else:  # realtime (Fargate), local-only paths, unknown paths: the auth function's JSON 404
        assert got == generate.FALLBACK


def test_every_route_of_the_table_is_in_the_api(transformed):
    api = _api(transformed)
    for function, paths in generate.api_routes().items():
        assert paths
        for path in paths:
            assert api[path] == function


def test_a_route_the_http_api_cannot_express_is_refused():
    with pytest.raises(ValueError, match="cannot express"):
        generate.api_paths(r"^/tasks/\d+/")
    assert generate.api_paths(r"^/(a|b/c)/[^/]+/x$") == ["/a/{id}/x", "/b/c/{id}/x"]


def _schedules(transformed) -> dict[str, dict]:
    schedules = {}
    for resource in transformed["Resources"].values():
        if resource["Type"] == "AWS::Scheduler::Schedule":
            props = resource["Properties"]
            schedules[json.loads(props["Target"]["Input"])["job"]] = props
    return schedules


def test_the_schedules_are_beats(transformed):
    schedules = _schedules(transformed)
    assert set(schedules) == set(SCHEDULE)
    for name, entry in SCHEDULE.items():
        props = schedules[name]
        assert props["ScheduleExpressionTimezone"] == {"Ref": "TimeZone"}
        assert props["Target"]["Arn"] == {"Fn::GetAtt": ["JobsFunction", "Arn"]}
        # EventBridge keeps an event at least 60 s.
        assert props["Target"]["RetryPolicy"]["MaximumEventAgeInSeconds"] == max(
            60, entry["expires"]
        )
        expression = props["ScheduleExpression"]
        when = entry["schedule"]
        if isinstance(when, crontab):
            minute, hour, dom, month, dow, year = re.fullmatch(
                r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)", expression
            ).groups()
            # Beat's entry: at this minute of this hour, every day.
            assert when.minute == {int(minute)}
            assert when.hour == {int(hour)}
            assert when.day_of_week == set(range(7))
            assert when.day_of_month == set(range(1, 32))
            assert when.month_of_year == set(range(1, 13))
            assert (dom, month, dow, year) == ("*", "*", "?", "*")
        else:
            count, unit = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression).groups()
            seconds = int(count) * {"minute": 60, "hour": 3600, "day": 86400}[unit]
            # EventBridge's least rate is a minute: Beat's sub-minute entries run every minute.
            assert seconds == max(60, when.run_every.total_seconds())


def test_the_schedule_conversions():
    from datetime import timedelta

    from celery.schedules import schedule

    assert generate.schedule_expression(schedule(timedelta(hours=1))) == "rate(1 hour)"
    assert generate.schedule_expression(schedule(timedelta(minutes=90))) == "rate(90 minutes)"
    assert generate.schedule_expression(schedule(timedelta(seconds=10))) == "rate(1 minute)"
    assert generate.schedule_expression(crontab(minute=15, hour=6, day_of_week="1,5")) == (
        "cron(15 6 ? * 2,6 *)"  # Monday and Friday: EventBridge counts Sunday as 1
    )
    with pytest.raises(ValueError, match="whole minutes"):
        generate.schedule_expression(schedule(timedelta(seconds=90)))
    with pytest.raises(ValueError, match="not both"):
        generate.schedule_expression(crontab(day_of_week="1", day_of_month="2"))


def test_ses_sending_is_limited_to_the_sender_identity(transformed):
    statements = [
        (name, statement)
        for name, resource in transformed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        for policy in resource["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    ses = [(name, s) for name, s in statements if "ses" in json.dumps(s["Action"])]
    assert [name for name, _ in ses] == ["WorkerTaskRole"]  # the worker sends every email
    [(_, statement)] = ses
    assert statement["Resource"]["Fn::Sub"].endswith(":identity/${SenderIdentity}")
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderAddress"}}}
    assert "*" not in json.dumps(statement)


def test_no_secret_is_in_the_template():
    text = TEMPLATE.read_text()
    sam = yaml.safe_load(text)
    for name in ("DatabaseUrl", "RedisUrl", "BrokerUrl"):
        assert sam["Parameters"][name] == {**sam["Parameters"][name], "NoEcho": True}
        assert "Default" not in sam["Parameters"][name]
    variables = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SECRET_KEY"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${AppSecret}:SecretString:SECRET_KEY}}"
    }
    assert "GenerateSecretString" in sam["Resources"]["AppSecret"]["Properties"]
    assert not re.search(r"(postgres|redis|amqps?)://[a-z0-9_]+:[^@\s]+@", text)  # USER:PASSWORD


def test_fargate_runs_realtime_and_the_worker_as_compose_does(transformed):
    resources = transformed["Resources"]
    for service, task in (
        ("realtime", "RealtimeTaskDefinition"),
        ("worker", "WorkerTaskDefinition"),
    ):
        (container,) = resources[task]["Properties"]["ContainerDefinitions"]
        assert container["Image"] == {"Ref": "ImageUri"}  # one image for both
        assert container["Command"] == COMPOSE[service]["command"]
        assert {"Name": "SECRET_KEY", "ValueFrom": {"Fn::Sub": "${AppSecret}:SECRET_KEY::"}} in (
            container["Secrets"]
        )
        assert resources[task]["Properties"]["RequiresCompatibilities"] == ["FARGATE"]
    worker = resources["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert worker["HealthCheck"]["Command"][0] == "CMD-SHELL"
    assert "$(hostname)" in worker["HealthCheck"]["Command"][1]
    services = [r for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    assert len(services) == 2


def test_the_jobs_function_queues_on_rabbitmq_what_beat_queues(monkeypatch):
    """EventBridge Scheduler's event, through scheduled.dispatch, to the broker: the message a
    worker takes is Beat's own, the one run_job task with the entry's expiry."""
    from scheduled import dispatch
    from scheduled.celery import app

    queue = f"dispatch-test-{uuid.uuid4().hex[:8]}"  # no worker of anyone's takes from it
    monkeypatch.setitem(app.conf, "task_default_queue", queue)
    schedules = yaml.safe_load(TEMPLATE.read_text())["Resources"]["JobsFunction"]
    event = json.loads(schedules["Properties"]["Events"]["SendDueReminders"]["Properties"]["Input"])
    started = datetime.now(UTC)
    try:
        answer = dispatch.handler(event, None)
        with app.connection_for_read() as connection:
            message = connection.default_channel.basic_get(queue=queue, no_ack=True)
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
    assert message is not None, "nothing was queued"
    headers = message.headers
    assert answer == {"job": "send_due_reminders", "task_id": headers["id"]}
    assert headers["task"] == "scheduled.run_job"
    args, kwargs, _ = json.loads(message.body)
    assert (args, kwargs) == (["send_due_reminders"], {})
    expires = datetime.fromisoformat(headers["expires"])
    lifetime = (expires - started).total_seconds()
    assert (
        SCHEDULE["send_due_reminders"]["expires"] - 5
        <= lifetime
        <= SCHEDULE["send_due_reminders"]["expires"] + 5
    )


def test_the_jobs_function_refuses_an_unknown_job():
    from scheduled import dispatch

    with pytest.raises(ValueError, match="one of"):
        dispatch.handler({"job": "drop_tables"}, None)
    with pytest.raises(ValueError, match="one of"):
        dispatch.handler("send_due_reminders", None)
