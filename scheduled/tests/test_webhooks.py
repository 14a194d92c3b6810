"""Webhook delivery end to end: writes, the outbox, real RabbitMQ, real `celery worker`s, and a
receiver on 127.0.0.1 that checks every signature with the Standard Webhooks algorithm itself."""

import functools
import ipaddress
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common.domain import services, webhooks
from common.domain.events import envelope
from common.domain.models import Event, Webhook, WebhookDelivery
from common.infra.event_push import encode
from common.tests.factories import ProjectFactory, UserFactory
from scheduled import webhook_sender
from scheduled import webhooks as scheduled_webhooks
from scheduled.celery import app
from scheduled.jobs import run_job
from scheduled.tests.tcp import Forwarder
from scheduled.tests.webhook_receiver import (
    Receiver,
    WebhookVerificationError,
    standard_webhooks_verify,
    start_receiver,
    start_worker,
)
from scheduled.webhooks import deliver

pytestmark = pytest.mark.django_db(transaction=True)

RETRIES = "0.5,0.5,1,1,1,1"  # the workers' WEBHOOK_RETRY_SCHEDULE: 7 attempts in about 5 s
TIMEOUT = "2"  # the workers' WEBHOOK_TIMEOUT_SECONDS
RABBITMQ_PORT = 5672


@pytest.fixture
def queue(settings) -> Iterator[str]:
    """A queue of this test's own on the shared RabbitMQ, and receivers on this machine."""
    name = f"test-hooks-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = name
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    yield name
    with app.connection_for_write() as broker:
        broker.default_channel.queue_delete(name)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = start_receiver()
    yield started
    started.close()


def worker_env(queue: str, broker_url: str | None = None) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "common.infra.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "CELERY_BROKER_URL": broker_url or settings.CELERY_BROKER_URL,
        "CELERY_QUEUE": queue,
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver is on 127.0.0.1
        "WEBHOOK_RETRY_SCHEDULE": RETRIES,
        "WEBHOOK_TIMEOUT_SECONDS": TIMEOUT,
    }


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> str:
    if process.poll() is None:
        os.killpg(process.pid, sig)  # the worker and its pool's children: a group of our own
    return process.communicate(timeout=30)[0].decode()


@pytest.fixture
def worker(queue) -> Iterator[subprocess.Popen]:
    process = start_worker(worker_env(queue), queue)
    yield process
    stop(process)


@pytest.fixture
def owner():
    return UserFactory(username="olive")


@pytest.fixture
def project(owner):
    return ProjectFactory(owner=owner)


def hook(project, url: str, events=("*",), active=True) -> Webhook:
    return webhooks.webhook_create(
        actor=project.owner, project_id=project.pk, url=url, events=list(events), active=active
    )


def write(project, title: str = "t"):
    return services.task_create(
        actor=project.owner, project=project, title=title, due_date=timezone.now()
    )


def wait(condition: Callable[[], object], timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    return condition()


def attempts(webhook: Webhook) -> list[tuple[int, str]]:
    rows = WebhookDelivery.objects.filter(webhook=webhook).order_by("id")
    return list(rows.values_list("attempt", "status"))


def test_a_real_worker_posts_each_event_signed_as_standard_webhooks_says(worker, receiver, project):
    webhook = hook(project, receiver.url())
    tasks = [write(project, title) for title in ("a", "b", "c")]

    received = receiver.wait_for(3)

    assert len(received) == 3, stop(worker)
    events = {str(e.id): e for e in Event.objects.filter(project_id=project.pk)}
    for request in received:
        body = standard_webhooks_verify(webhook.secret, request.headers, request.body)
        event = events[request.headers["webhook-id"]]
        assert request.body == encode(envelope(event)).encode()  # the websocket's text
        assert body["type"] == "task.created"
        assert request.headers["content-type"] == "application/json"
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    assert sorted(r.json["data"]["id"] for r in received) == sorted(t.id for t in tasks)
    assert wait(lambda: set(attempts(webhook)) == {(1, "succeeded")}), (
        list(WebhookDelivery.objects.values_list("attempt", "status", "error")),
        stop(worker)[-3000:],
    )
    rows = WebhookDelivery.objects.filter(webhook=webhook)
    assert {(r.response_status, r.error) for r in rows} == {(200, "")}
    assert all(r.duration_ms is not None for r in rows)


def test_a_wrong_secret_or_a_changed_body_fails_the_reference_verification(
    queue, receiver, project
):
    webhook = hook(project, receiver.url())
    event = Event.objects.create(
        project_id=project.pk, seq=99, type="task.created", occurred_at=timezone.now(), data={}
    )
    body = encode(envelope(event)).encode()
    headers = {"webhook-id": str(event.id), "webhook-timestamp": str(int(time.time()))}
    headers["webhook-signature"] = webhooks.sign(
        webhook.secret, str(event.id), int(headers["webhook-timestamp"]), body
    )

    assert standard_webhooks_verify(webhook.secret, headers, body)["seq"] == 99
    with pytest.raises(WebhookVerificationError):
        standard_webhooks_verify(webhooks.secret_new(), headers, body)
    with pytest.raises(WebhookVerificationError):
        standard_webhooks_verify(webhook.secret, headers, body + b" ")


@pytest.mark.parametrize("answer", [500, 302, "hang"])
def test_a_failed_attempt_is_retried_with_the_same_webhook_id(worker, receiver, project, answer):
    receiver.hang_seconds = 4  # past the workers' 2 s timeout
    receiver.plan("/hook", answer, answer)
    webhook = hook(project, receiver.url())
    write(project)

    received = receiver.wait_for(3, timeout=40)
    assert wait(lambda: len(attempts(webhook)) == 3 and attempts(webhook)[-1][1] == "succeeded")

    assert len({r.headers["webhook-id"] for r in received}) == 1
    assert [r.headers["webhook-id"] for r in received] == [str(Event.objects.get().id)] * 3
    assert attempts(webhook) == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    failed = WebhookDelivery.objects.filter(webhook=webhook, status="failed")
    if answer == "hang":
        assert {d.error for d in failed} == {"No answer within 2 s."}
        assert all(d.duration_ms < 3500 for d in failed)  # the timeout, not the receiver's 4 s
    else:
        assert {d.response_status for d in failed} == {answer}
    if answer == 302:
        assert "redirect, not followed" in failed[0].error
        assert not [r for r in receiver.received if r.path == "/elsewhere"]
    retry_gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    assert all(gap >= 0.3 for gap in retry_gaps)  # the schedule's 0.5 s, less its jitter


def test_a_refused_connection_is_retried_until_the_receiver_listens(worker, queue, project):
    with socket.socket() as probe:  # a port nothing listens on, for now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhook = hook(project, f"http://127.0.0.1:{port}/hook")
    write(project)
    assert wait(lambda: len(attempts(webhook)) >= 2)

    receiver = start_receiver_on(port)
    try:
        [request] = receiver.wait_for(1, timeout=20)
    finally:
        receiver.close()

    assert wait(lambda: attempts(webhook)[-1][1] == "succeeded")
    first = WebhookDelivery.objects.filter(webhook=webhook).order_by("id").first()
    assert first.status == "failed"
    assert first.error.startswith("Could not connect")
    assert first.response_status is None
    assert request.headers["webhook-id"] == str(Event.objects.get().id)


def start_receiver_on(port: int) -> Receiver:
    receiver = start_receiver()
    handler = receiver.server.RequestHandlerClass
    receiver.close()
    receiver.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


def test_attempts_end_failed_after_the_schedule(worker, receiver, project):
    receiver.plan("/hook", *[500] * 20)
    webhook = hook(project, receiver.url())
    write(project)

    assert wait(lambda: len(attempts(webhook)) == 7 and attempts(webhook)[-1][1] == "failed", 40)
    time.sleep(1.5)  # longer than any delay in the schedule: nothing more comes

    assert attempts(webhook) == [(n, "failed") for n in range(1, 8)]
    assert len(receiver.received) == 7


def test_410_turns_the_webhook_off_at_once(worker, receiver, project):
    receiver.plan("/hook", 410)
    webhook = hook(project, receiver.url())
    write(project)

    assert wait(lambda: not Webhook.objects.get(pk=webhook.pk).active)
    write(project)
    time.sleep(1.5)

    assert attempts(webhook) == [(1, "failed")]
    assert len(receiver.received) == 1
    webhook.refresh_from_db()
    assert webhook.disabled_reason == "The receiver answered 410 Gone."


def test_each_webhook_gets_only_the_events_it_asks_for(worker, receiver, project):
    created_only = hook(project, receiver.url("/created"), events=["task.created"])
    everything = hook(project, receiver.url("/all"))
    hook(project, receiver.url("/off"), active=False)
    other = ProjectFactory(owner=project.owner)
    hook(other, receiver.url("/other"), events=["member.added"])
    task = write(project)
    services.task_update(actor=project.owner, task=task, status="completed")
    write(other)

    receiver.wait_for(3)
    time.sleep(1)

    by_path: dict[str, set[str]] = {}
    for request in receiver.received:
        by_path.setdefault(request.path, set()).add(request.json["type"])
    assert by_path == {"/created": {"task.created"}, "/all": {"task.created", "task.updated"}}
    assert len(attempts(created_only)) == 1
    assert len(attempts(everything)) == 2


def test_attempts_to_one_name_and_address_reuse_a_kept_alive_connection(
    queue, receiver, project, monkeypatch
):
    # A message's attempts, and the next message's, to webhooks on one host name and address
    # share the process's kept-alive connections; the same address under another name gets
    # connections of its own (Host and TLS server name are the name's).
    first, second = hook(project, receiver.url("/first")), hook(project, receiver.url("/second"))
    other_name = receiver.url("/named").replace("127.0.0.1", "hooks.example.test")
    loopback = [ipaddress.ip_address("127.0.0.1")]
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: loopback)  # a name DNS never knew
    named = hook(project, other_name)

    def pending(*webhooks: Webhook) -> list[int]:
        rows = WebhookDelivery.objects.filter(status="pending", webhook__in=webhooks)
        return list(rows.values_list("pk", flat=True))

    write(project, "a")
    assert deliver(pending(first), claim="a") == {"claimed": 1, "succeeded": 1}
    assert deliver(pending(second), claim="a") == {"claimed": 1, "succeeded": 1}
    assert deliver(pending(named), claim="a") == {"claimed": 1, "succeeded": 1}
    write(project, "b")
    assert deliver(pending(second), claim="b") == {"claimed": 1, "succeeded": 1}
    assert deliver(pending(first, named), claim="b") == {"claimed": 2, "succeeded": 2}

    received = receiver.wait_for(6)
    by_ip = {r.peer for r in received if r.path in ("/first", "/second")}
    by_name = {r.peer for r in received if r.path == "/named"}
    assert len(by_ip) == 1  # one connection, kept alive across webhooks and messages
    assert len(by_name) == 1
    assert by_name != by_ip
    assert {r.headers["host"] for r in received if r.path == "/named"} == {other_name.split("/")[2]}
    assert set(attempts(first)) == set(attempts(second)) == {(1, "succeeded")}


def in_thread(call: Callable[[], object]) -> object:
    """`call()` on a thread of its own (a worker thread's), its database connection closed."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(call())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    return result[0] if result else None


def pending_of(webhook: Webhook) -> list[int]:
    rows = WebhookDelivery.objects.filter(status="pending", webhook=webhook)
    return list(rows.values_list("pk", flat=True))


def test_a_webhooks_connection_serves_its_next_message_whichever_thread_takes_it(
    queue, receiver, project
):
    # One event loop per process sends the attempts of every worker thread: a webhook's
    # kept-alive connection is reused by its next message, though another thread took it.
    webhook = hook(project, receiver.url())
    for title in ("a", "b"):
        write(project, title)
        ids = pending_of(webhook)
        made = in_thread(functools.partial(deliver, ids, claim=title))
        assert made == {"claimed": 1, "succeeded": 1}

    first, second = receiver.wait_for(2)
    assert first.peer == second.peer
    assert set(attempts(webhook)) == {(1, "succeeded")}


def test_a_pool_with_an_attempt_in_flight_outlives_another_messages_sweep(
    queue, receiver, project, monkeypatch
):
    # Another thread's message ends (and sweeps the idle pools) while this one's attempt waits
    # for its answer on the same loop: that attempt's pool is in use, and is not closed.
    receiver.hang_seconds = 1.0  # under the timeout: an answer, late
    receiver.plan("/slow", "hang")
    slow, quick = hook(project, receiver.url("/slow")), hook(project, receiver.url("/quick"))
    write(project)
    slow_ids, quick_ids = pending_of(slow), pending_of(quick)
    monkeypatch.setattr(webhook_sender, "POOL_IDLE_SECONDS", 0.0)  # every pool idle at once
    outcomes: list[object] = []
    waiting = threading.Thread(
        target=lambda: outcomes.append(in_thread(lambda: deliver(slow_ids, claim="slow")))
    )
    waiting.start()
    assert receiver.wait_for(1, "/slow")  # in flight

    assert deliver(quick_ids, claim="quick") == {"claimed": 1, "succeeded": 1}
    waiting.join(timeout=30)

    assert outcomes == [{"claimed": 1, "succeeded": 1}]
    assert attempts(slow) == attempts(quick) == [(1, "succeeded")]


def test_a_pool_idle_for_its_time_is_closed_and_the_next_attempt_connects_again(
    queue, receiver, project, monkeypatch
):
    webhook = hook(project, receiver.url())
    monkeypatch.setattr(webhook_sender, "POOL_IDLE_SECONDS", 0.0)  # idle at once
    for title in ("a", "b"):
        write(project, title)
        pending = WebhookDelivery.objects.filter(status="pending").values_list("pk", flat=True)
        assert deliver(list(pending), claim=title) == {"claimed": 1, "succeeded": 1}

    first, second = receiver.wait_for(2)
    assert first.peer != second.peer  # the first's pool was closed after its attempt
    assert set(attempts(webhook)) == {(1, "succeeded")}


def test_the_claim_finds_its_rows_by_primary_key_whatever_the_pending_backlog(queue, project):
    # Statistics that say few rows are pending (taken before a burst of writes) made the
    # planner AND the primary key with the relay's partial index of pending rows, which a claim
    # then read whole, every pending (and dead) entry, at every message.
    webhook = hook(project, "http://127.0.0.1:9/hook")
    event = Event.objects.create(
        project_id=project.pk, seq=1, type="task.created", occurred_at=timezone.now(), data={}
    )

    def log(count: int, status: str) -> list[int]:
        rows = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(webhook=webhook, event_id=event.id, attempt=1, due_at=event.occurred_at)
            for _ in range(count)
        )
        WebhookDelivery.objects.filter(pk__in=[r.pk for r in rows]).update(status=status)
        return [r.pk for r in rows]

    log(2000, "succeeded")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE common_webhookdelivery")  # none pending, it says
    backlog = log(5000, "pending")
    now = timezone.now()
    params = {"now": now, "claim": "c", "ids": backlog[-10:], "lapsed": now}

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + scheduled_webhooks._CLAIM, params)
        plan = json.dumps(cursor.fetchone()[0])

    assert "common_webhookdelivery_pkey" in plan
    assert "delivery_pending_due_idx" not in plan


def test_a_write_that_rolls_back_leaves_no_delivery(queue, receiver, project):
    webhook = hook(project, receiver.url())

    def write_then_fail() -> None:
        with transaction.atomic():
            write(project)
            assert WebhookDelivery.objects.filter(webhook=webhook).count() == 1  # the same one
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        write_then_fail()

    assert not WebhookDelivery.objects.exists()


def test_a_broker_outage_during_the_write_loses_nothing_the_relay_sends_it(
    queue, receiver, project, settings
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{closed}//"
    webhook = hook(project, receiver.url())
    started = time.monotonic()

    write(project)  # commits; the queueing after commit fails

    assert time.monotonic() - started < 5
    [delivery] = WebhookDelivery.objects.filter(webhook=webhook)
    assert (delivery.status, delivery.queued_at) == ("pending", None)
    forwarder = Forwarder(RABBITMQ_PORT, port=closed)  # the broker is back on that port
    broker = f"amqp://guest:guest@127.0.0.1:{closed}//"
    settings.CELERY_BROKER_URL = broker
    worker = start_worker(worker_env(queue, broker), queue)
    try:
        assert run_job("relay_webhooks") == {"queued": 1}
        [request] = receiver.wait_for(1)
        assert wait(lambda: attempts(webhook) == [(1, "succeeded")])
        assert run_job("relay_webhooks") == {"queued": 0}
    finally:
        output = stop(worker)
        forwarder.close()
    standard_webhooks_verify(webhook.secret, request.headers, request.body)
    assert request.headers["webhook-id"] == str(Event.objects.get().id), output


def test_a_worker_killed_mid_delivery_delivers_again(queue, receiver, project):
    receiver.hang_seconds = 1.5  # under the 2 s timeout: the worker waits for the answer
    receiver.plan("/hook", "hang")
    webhook = hook(project, receiver.url())
    first = start_worker(worker_env(queue), queue)
    try:
        write(project)
        # The attempt has reached the receiver: kill the whole worker before it is recorded.
        assert receiver.wait_for(1)
    finally:
        stop(first, signal.SIGKILL)
    assert attempts(webhook) == [(1, "pending")]

    second = start_worker(worker_env(queue), queue)
    try:
        received = receiver.wait_for(2)
        assert wait(lambda: attempts(webhook) == [(1, "succeeded")])
    finally:
        output = stop(second)

    assert len(received) == 2, output  # at least once: the same event, the same webhook-id
    assert len({r.headers["webhook-id"] for r in received}) == 1


def worker_backends(name: str) -> set[int]:
    """The PostgreSQL backends of the worker whose libpq application name is `name` (not this
    process's, whose pool holds more than the test's own connection)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s",
            [name],
        )
        return {pid for (pid,) in cursor.fetchall()}


def test_a_worker_keeps_its_database_connection_and_replaces_one_postgresql_dropped(
    queue, receiver, project
):
    # Production's threads pool: Celery's Django fixup closes the connection after each task,
    # which hands it back to the process's psycopg pool, kept open for the next message. When
    # PostgreSQL drops it (a restart, an idle timeout), the next message fails on it once and
    # is made again after a short backoff, on a new connection, rather than left to the relay.
    webhook = hook(project, receiver.url())
    name = f"worker-{queue}"
    worker = start_worker({**worker_env(queue), "PGAPPNAME": name}, queue, pool="threads")
    try:
        for made, title in enumerate(("a", "b", "c"), start=1):
            write(project, title)
            assert wait(lambda: attempts(webhook) == [(1, "succeeded")] * made)  # noqa: B023
            if made == 1:
                kept = worker_backends(name)
        assert kept
        assert worker_backends(name) == kept  # the same connection, not one per message

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(kept)]
            )
        write(project, "d")
        assert wait(lambda: attempts(webhook) == [(1, "succeeded")] * 4, timeout=20)
        assert worker_backends(name).isdisjoint(kept)
    finally:
        output = stop(worker)
    assert len(receiver.received) == 4, output


def test_redeliver_sends_the_event_again_as_a_new_attempt_1(worker, receiver, project):
    webhook = hook(project, receiver.url())
    write(project)
    receiver.wait_for(1)
    assert wait(lambda: attempts(webhook) == [(1, "succeeded")])
    delivery = WebhookDelivery.objects.get()

    again = webhooks.delivery_redeliver(actor=project.owner, delivery=delivery)
    received = receiver.wait_for(2)

    assert again.attempt == 1
    assert wait(lambda: attempts(webhook) == [(1, "succeeded"), (1, "succeeded")])
    assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"]
    assert received[0].body == received[1].body
