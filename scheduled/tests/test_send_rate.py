"""The fleet's send rate: one bucket in the real Redis, SES's quota and throttling from a stub
SES server (bench._ses_stub) that enforces a rate."""

import threading
import time
import uuid
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from django.conf import settings as django_settings

from bench._ses_stub import SESStub
from scheduled import email, send_rate
from scheduled.send_rate import SendRate
from scheduled.tests.tcp import SilentServer


@pytest.fixture
def key() -> str:
    return f"{django_settings.REDIS_PREFIX}:test-send-rate:{uuid.uuid4().hex}"


@pytest.fixture
def stub(settings):
    server = SESStub(rate=20, latency_ms=5, burst=0.25).start()
    settings.EMAIL_BACKEND = "scheduled.email.SESBackend"
    settings.AWS_SES_REGION_ENDPOINT_URL = server.url
    settings.SES_MAX_SEND_RATE = 0  # the account's, from the stub's GetSendQuota
    send_rate.reset()
    yield server
    server.stop()
    send_rate.reset()
    email.forget_backends()  # its client points at this stub


def take_all(limiters: list[SendRate], per_thread: int, threads_each: int) -> list[float]:
    """Every limiter's threads take `per_thread` slots; returns when each slot was granted."""
    granted: list[float] = []
    lock = threading.Lock()

    def work(limiter: SendRate) -> None:
        for _ in range(per_thread):
            wait = limiter.reserve()
            time.sleep(max(wait, 0))
            with lock:
                granted.append(time.monotonic())

    threads = [
        threading.Thread(target=work, args=(limiter,))
        for limiter in limiters
        for _ in range(threads_each)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(granted)


def test_processes_sharing_the_bucket_keep_to_one_rate_together(key, settings):
    # Two limiters are two processes: their own Redis clients, one key.
    limiters = [SendRate(settings.REDIS_URL, key, rate=100) for _ in range(2)]

    granted = take_all(limiters, per_thread=15, threads_each=2)  # 60 slots

    assert len(granted) == 60
    assert granted[-1] - granted[0] >= 59 / 100 - 0.02  # the fleet's rate, not 2 x 100
    assert granted[-1] - granted[0] < 59 / 100 + 0.5  # and no slower than it
    # Within any 0.2 s, about 20 slots at 100/s (a few more: threads wake up late and bunch).
    assert all(granted[i + 25] - granted[i] >= 0.2 for i in range(60 - 25))


def test_without_a_configured_rate_the_account_quota_is_read_once(stub, settings):
    limiter = SendRate(settings.REDIS_URL, f"{settings.REDIS_PREFIX}:quota-{uuid.uuid4().hex}")

    rates = {limiter.rate() for _ in range(5)}

    assert rates == {20.0}
    assert stub.stats()["quota_reads"] == 1


def test_the_sandbox_rate_holds_while_ses_does_not_answer_the_quota(settings):
    server = SilentServer(marker=b"Action=GetSendQuota")
    settings.EMAIL_BACKEND = "scheduled.email.SESBackend"
    settings.AWS_SES_REGION_ENDPOINT_URL = server.url
    settings.SES_CONNECT_TIMEOUT, settings.SES_READ_TIMEOUT = 1, 0.3
    try:
        limiter = SendRate(settings.REDIS_URL, "unused")
        assert limiter.rate() == send_rate.SANDBOX_RATE
        assert limiter.rate() == send_rate.SANDBOX_RATE  # not asked again at once
        assert server.wait_for_requests(1) == 1
    finally:
        server.close()


def test_with_redis_down_a_process_paces_itself_and_nothing_is_lost(key, caplog, settings):
    settings.EMAIL_BACKEND = "scheduled.email.SESBackend"
    down = SendRate("redis://127.0.0.1:1/0", key, rate=50)  # nothing listens on port 1

    started = time.monotonic()
    waits = [down.take() for _ in range(10)]
    elapsed = time.monotonic() - started

    assert elapsed >= 9 / 50 - 0.02  # still the rate, from this process's own bucket
    assert waits[0] == 0
    assert "Redis unavailable" in caplog.text
    assert caplog.text.count("Redis unavailable") == 1  # logged once, not per send


def test_sends_through_a_shared_bucket_are_never_throttled_unpaced_ones_are(stub, settings):
    unavailable: list[int] = []

    def send_from(threads: int, each: int) -> None:
        backend = email.shared_backend()  # one SES client for every thread, as a worker has

        def work(n: int) -> None:
            for i in range(each):
                try:
                    email.send_email(
                        to=f"t{n}-{i}@example.com", subject="s", body="b", connection=backend
                    )
                except email.EmailUnavailable:
                    unavailable.append(n)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)

    send_from(threads=4, each=5)  # 20 emails at the stub's 20/s: about a second
    paced = stub.stats()

    assert (paced["accepted"], paced["throttled"]) == (20, 0)

    settings.SES_MAX_SEND_RATE = 1000  # a rate above the account's: SES throttles the excess
    send_rate.reset()
    with mock.patch("scheduled.email.ATTEMPTS", 1):
        send_from(threads=8, each=5)
    assert stub.stats()["throttled"] == len(unavailable) > 0


def test_a_throttled_send_is_retried_at_the_buckets_next_slot_without_backoff(settings):
    throttled = ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "SendRawEmail")
    limiter = mock.Mock()

    with (
        mock.patch("scheduled.email.send_rate", return_value=limiter),
        mock.patch("django.core.mail.EmailMessage.send", side_effect=[throttled, 1]) as send,
        mock.patch("scheduled.email.time.sleep") as sleep,
    ):
        email.send_email(to="a@example.com", subject="s", body="b")

    assert send.call_count == 2
    assert limiter.take.call_count == 2  # each attempt took its turn
    sleep.assert_not_called()  # the bucket, not a backoff, said when


def test_a_process_reserves_a_batch_of_slots_in_one_round_trip(key, settings):
    limiter = SendRate(settings.REDIS_URL, key, rate=1000)
    calls = mock.Mock(wraps=limiter._script)
    limiter._script = calls

    started = time.monotonic()
    for _ in range(2 * send_rate.BATCH):
        time.sleep(max(limiter.reserve(), 0))

    assert calls.call_count == 2  # one per batch, not one per send
    # Still the rate: the slots of 8 sends span 7 intervals, less a little, for the second
    # batch's start is counted on Redis's clock (TIME) and its slots on this process's.
    assert time.monotonic() - started >= (2 * send_rate.BATCH - 1) / 1000 - 0.001


def test_another_process_gets_the_slots_after_a_reserved_batch(key, settings):
    first, other = (SendRate(settings.REDIS_URL, key, rate=100) for _ in range(2))

    assert first.reserve() < 0.01  # its first slot now, BATCH - 1 more kept for its next sends
    wait = other.reserve()

    assert wait >= send_rate.BATCH / 100 - 0.01  # after the whole batch: one rate together


def test_a_kept_slot_not_used_in_time_is_dropped_not_sent_on_late(key, settings):
    limiter = SendRate(settings.REDIS_URL, key, rate=1000)
    calls = mock.Mock(wraps=limiter._script)
    limiter._script = calls
    limiter.reserve()  # a batch: this slot, and BATCH - 1 kept

    time.sleep(send_rate.STALE_SECONDS + 0.05)  # the kept ones are now too old to use
    wait = limiter.reserve()

    assert calls.call_count == 2  # a fresh batch, not a stale slot
    assert wait >= 0
    assert len(limiter._slots) == send_rate.BATCH - 1
