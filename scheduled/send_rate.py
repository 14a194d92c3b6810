"""The fleet's one send rate: a token bucket in Redis that every email takes a token from.

SES throttles an account past its maximum send rate (SES_MAX_SEND_RATE per second; by default
what SES's GetSendQuota says, read once per process). Every process that sends email (every
worker, every thread of one) takes its turn from one bucket in Redis before each attempt to send,
so the fleet together keeps to the rate, and more workers send more, up to it: throttling is the
exception, not the pacing.

The bucket is a GCRA, as one Lua script (atomic, on Redis's own clock, so workers' clocks do not
matter): each call reserves the next free slot, 1/rate after the previous one, and answers how
long to wait for it; BURST slots may be taken at once after a quiet spell. A reservation is kept
even if its caller dies before sending (the fleet loses one slot, never exceeds the rate).
A process reserves BATCH consecutive slots in one call and hands them to its next sends, one
each: a Redis round trip per BATCH emails, not per email. A slot is used no later than
STALE_SECONDS after its time, else dropped (the fleet loses it): the sends in any span of time
are then at most the slots in it and STALE_SECONDS before it, so the fleet exceeds the rate by
at most rate x STALE_SECONDS sends, well within what SES counts per second.

Redis down: no email is lost and none is held back. This process paces itself with the same
bucket in memory, at the whole rate, logs it once, and tries Redis again every RECHECK_SECONDS.
Several workers may then exceed the rate together; SES answers the excess with `Throttling`,
which scheduled.email retries after the bucket's next slot (and past its attempts leaves to a
later run): throttling paces the fleet until Redis is back.
"""

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import redis
from django.conf import settings

from common.infra.redis_clients import shared_redis

logger = logging.getLogger(__name__)

BURST = 1.0  # slots that may be taken at once: SES counts per second, we keep to the rate
BATCH = 4  # slots a process reserves at once (a worker's threads)
STALE_SECONDS = 0.1  # a reserved slot not used this long after its time is dropped
RECHECK_SECONDS = 5.0  # with Redis down, how often to try it again
SANDBOX_RATE = 1.0  # SES's rate for a new account: used while GetSendQuota cannot be read
QUOTA_RECHECK_SECONDS = 60.0

# KEYS[1]: the bucket's key (its theoretical arrival time, in microseconds of Redis's clock).
# ARGV[1]: microseconds between sends (1e6 / rate); ARGV[2]: burst tolerance in microseconds;
# ARGV[3]: how many consecutive slots to reserve (1 if absent).
# Returns the microseconds to wait for the first; the others follow it, one interval apart.
_RESERVE = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local count = tonumber(ARGV[3] or 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local at = tat - tolerance
if at < now then at = now end
local ttl = math.ceil((tat + count * interval - now) / 1000) + 1000
redis.call('SET', KEYS[1], tostring(tat + count * interval), 'PX', ttl)
return at - now
"""


@dataclass
class _LocalBucket:
    """The same GCRA in this process (Redis down, or no Redis: local mode)."""

    tat: float = 0.0

    def reserve(self, rate: float) -> float:
        now = time.monotonic()
        tat = max(self.tat, now)
        at = max(tat - (BURST - 1) / rate, now)
        self.tat = tat + 1 / rate
        return at - now


class SendRate:
    """take(): block until this process may make one send attempt, at the fleet's rate."""

    def __init__(self, url: str, key: str, rate: float | None = None) -> None:
        self.key = key
        self._rate = rate
        self._quota_read_at = 0.0
        self._lock = threading.Lock()
        self._local = _LocalBucket()
        self._slots: deque[float] = deque()  # reserved in Redis, not yet used (monotonic times)
        self._redis_down_since: float | None = None
        # The process's one client of that Redis (0.5 s timeouts, no retries), as the cache's.
        self._client = shared_redis(url).client if url else None
        self._script = self._client.register_script(_RESERVE) if self._client else None

    def rate(self) -> float:
        """SES_MAX_SEND_RATE, else the account's MaxSendRate, read once (per process)."""
        if self._rate is None:
            with self._lock:
                if self._rate is None and time.monotonic() >= self._quota_read_at:
                    self._rate = _account_rate()
                    if self._rate is None:  # SES not answering: the sandbox's rate, for now
                        self._quota_read_at = time.monotonic() + QUOTA_RECHECK_SECONDS
        return self._rate or SANDBOX_RATE

    def take(self) -> float:
        """Wait for this attempt's slot; return the seconds waited."""
        if not _paced():
            return 0.0  # not SES (the console, locmem in tests): nothing to keep to
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)
        return wait

    def reserve(self) -> float:
        """Reserve the next slot; return the seconds until it (0: now)."""
        rate = self.rate()
        if self._script is not None and self._redis_usable():
            with self._lock:  # one thread at a time takes a kept slot or reserves more
                now = time.monotonic()
                while self._slots and self._slots[0] < now - STALE_SECONDS:
                    self._slots.popleft()  # too late to use: dropped, never sent on
                if not self._slots and (first := self._reserve_in_redis(rate)) is not None:
                    self._slots.extend(now + first + i / rate for i in range(BATCH))
                if self._slots:
                    return max(0.0, self._slots.popleft() - now)
        with self._lock:
            return self._local.reserve(rate)

    def _reserve_in_redis(self, rate: float) -> float | None:
        """Reserve BATCH slots in the shared bucket: the seconds until the first (None: Redis
        failed)."""
        try:
            wait_us = self._script(
                keys=[self.key], args=[int(1e6 / rate), int((BURST - 1) * 1e6 / rate), BATCH]
            )
        except (redis.RedisError, OSError) as exc:
            self._redis_failed(exc)
            return None
        if self._redis_down_since is not None:
            logger.warning("send rate: Redis is back, the fleet shares one bucket again")
            self._redis_down_since = None
        return int(wait_us) / 1e6

    def _redis_usable(self) -> bool:
        down = self._redis_down_since
        return down is None or time.monotonic() - down >= RECHECK_SECONDS

    def _redis_failed(self, exc: Exception) -> None:
        if self._redis_down_since is None:
            logger.warning(
                "send rate: Redis unavailable (%s); this process paces itself at the whole "
                "rate until it is back, and SES's throttling answers are retried",
                exc,
            )
        self._redis_down_since = time.monotonic()


def _paced() -> bool:
    """Whether email goes to SES (EMAIL_BACKEND is an SESBackend)."""
    import django_ses
    from django.utils.module_loading import import_string

    return issubclass(import_string(settings.EMAIL_BACKEND), django_ses.SESBackend)


def _account_rate() -> float | None:
    """The account's MaxSendRate from SES's GetSendQuota, or None when SES does not answer.
    Read through the process's one SES client, which its sends then use."""
    from scheduled.email import shared_backend

    try:
        quota = shared_backend().connection.get_send_quota()
        rate = float(quota["MaxSendRate"])
    except Exception as exc:
        logger.warning("send rate: GetSendQuota failed (%s); %s/s until read", exc, SANDBOX_RATE)
        return None
    logger.info("send rate: SES's MaxSendRate is %s/s", rate)
    return rate if rate > 0 else None


_shared: SendRate | None = None
_shared_lock = threading.Lock()


def send_rate() -> SendRate:
    """This process's limiter (made at its first send, so the quota is read once per start)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            configured = settings.SES_MAX_SEND_RATE
            _shared = SendRate(
                settings.CACHE_REDIS_URL,
                f"{settings.REDIS_PREFIX}:ses:send-rate",
                rate=configured or None,
            )
        return _shared


def reset() -> None:
    """Forget this process's limiter (tests, and settings changed at run time)."""
    global _shared
    with _shared_lock:
        _shared = None
