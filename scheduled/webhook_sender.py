"""Webhook attempts over HTTP (scheduled.webhooks' sending): one event loop per process, on a
thread of its own, which every worker thread hands its message's attempts to and waits for.

One thread doing a process's HTTP, as a bare asyncio client would, rather than one loop per
worker thread, whose threads each woke for every socket read and write and spent much of a
message waiting for the GIL. Each connection goes to the address the check returned, with the
URL's name as Host header and TLS server name, and redirects are not followed. Imported only
by the workers' deliveries: aiohttp's import costs about 0.6 s, which a web function that
merely queues deliveries after its writes does not pay.
"""

import asyncio
import atexit
import contextlib
import functools
import os
import ssl
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import aiohttp
import yarl
from django.conf import settings

from common.domain import webhooks
from scheduled.webhooks import Attempt, Outcome

RESPONSE_READ_MAX = 64 * 1024  # of a receiver's answer, read (for keep-alive) and dropped
USER_AGENT = "Taskwire-Webhooks/1.0"
# Idle connections are dropped before the 5 s after which common servers (uvicorn, Node) close
# theirs, so one they are closing is not reused; a session idle that long is closed.
KEEPALIVE_SECONDS = 4.0
POOL_IDLE_SECONDS = KEEPALIVE_SECONDS
LOOKUPS_MAX = 64  # a process's address look-ups at once (a message has at most BATCH)


@functools.lru_cache(maxsize=1024)
def _request_parts(url: str) -> tuple[str, str]:
    """(Host header, request target) of a webhook's URL, encoded as aiohttp sends them."""
    parsed = yarl.URL(url)
    return parsed.host_port_subcomponent or "", parsed.raw_path_qs


def _connect_url(target: webhooks.Target, path: str) -> yarl.URL:
    """The request's URL with the checked address as its host: aiohttp connects to it, no
    look-up (an address needs none)."""
    host = str(target.address)
    host = f"[{host}]" if target.address.version == 6 else host
    return yarl.URL(f"{target.scheme}://{host}:{target.port}{path}", encoded=True)


class Sender:
    """A process's event loop, on a thread of its own, and its connection pools (aiohttp's):
    a session per (scheme, name, address, port), so kept-alive connections are reused only for
    the name and address they were made for, whichever worker thread's message the next attempt
    is in. No cookies are kept, no redirect is followed, no proxy used (aiohttp reads no proxy
    from the environment unless asked to), nothing decompressed.

    aiohttp, not httpx: httpcore's pure-Python HTTP/1.1 (h11) and its pool's per-request checks
    of every connection were over half of a worker's CPU; on aiohttp's C parser a worker's CPU
    per delivery in bench webhooks went from 1.97-2.29 ms to 1.19-1.29 ms."""

    def __init__(self) -> None:
        self.pid = os.getpid()  # a forked child makes its own (the loop's thread is not copied)
        self.loop = asyncio.new_event_loop()
        self.sessions: dict[tuple, aiohttp.ClientSession] = {}
        self.used: dict[tuple, float] = {}  # a session's last use (monotonic)
        self.busy: Counter[tuple] = Counter()  # a session's attempts in flight: never closed then
        self.swept = time.monotonic()
        self.tls = ssl.create_default_context()  # the system's CAs, the name checked
        # The look-ups (asyncio.to_thread) of every thread's attempts: threads enough for them
        # all at once (made as needed), so names slow to resolve do not queue the others.
        lookups = ThreadPoolExecutor(LOOKUPS_MAX, thread_name_prefix="webhook-lookup")
        self.loop.set_default_executor(lookups)
        thread = threading.Thread(target=self.loop.run_forever, name="webhook-sender", daemon=True)
        thread.start()
        atexit.register(self.close)

    def close(self) -> None:
        """Close every session (their connections), as the process exits."""
        if self.pid != os.getpid() or not self.loop.is_running():
            return
        with contextlib.suppress(Exception):  # exiting: nothing more to do about it
            asyncio.run_coroutine_threadsafe(self._close_all(), self.loop).result(timeout=5)

    async def _close_all(self) -> None:
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await session.close()

    def send_all(self, attempts: list[Attempt]) -> list[Outcome]:
        """The attempts' outcomes, from the process's loop (each attempt bounded by its
        timeout there); the calling thread waits."""
        if not attempts:
            return []
        return asyncio.run_coroutine_threadsafe(self._send_all(attempts), self.loop).result()

    async def _send_all(self, attempts: list[Attempt]) -> list[Outcome]:
        outcomes = list(await asyncio.gather(*(self._send(attempt) for attempt in attempts)))
        await self._close_idle()
        return outcomes

    async def _close_idle(self) -> None:
        """Close the sessions that no attempt used for POOL_IDLE_SECONDS (aiohttp has closed
        their expired connections) and none is using, looking at most once in that time, so
        that a process does not keep a session for every name it ever sent to."""
        now = time.monotonic()
        if now - self.swept < POOL_IDLE_SECONDS:
            return
        self.swept = now
        idle = [
            key
            for key, used in self.used.items()
            if now - used >= POOL_IDLE_SECONDS and not self.busy[key]
        ]
        for key in idle:
            del self.used[key]
            self.busy.pop(key, None)
            with contextlib.suppress(aiohttp.ClientError, OSError):  # closing: nothing to lose
                await self.sessions.pop(key).close()

    async def _send(self, attempt: Attempt) -> Outcome:
        outcome = Outcome(attempt.delivery)
        timeout = settings.WEBHOOK_TIMEOUT_SECONDS
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                if webhooks.is_literal(urlsplit(attempt.url).hostname or ""):
                    target = webhooks.address_check(attempt.url)  # no look-up to wait for
                else:  # the look-up on a thread: a resolver that hangs costs the timeout only
                    target = await asyncio.to_thread(webhooks.address_check, attempt.url)
                outcome.response_status = await self._post(target, attempt)
        except webhooks.AddressRefused as exc:
            outcome.error = str(exc)
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
            outcome.error = f"No answer within {timeout:g} s."
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, TLS refused
            outcome.error = f"Could not connect: {exc}"
        except aiohttp.ClientError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.duration_ms = round((time.monotonic() - started) * 1000)
        status = outcome.response_status
        if status is not None and not outcome.succeeded:
            if status == 410:
                outcome.gone = True
            kind = "a redirect, not followed" if 300 <= status < 400 else "not 2xx"
            outcome.error = f"HTTP {status} ({kind})."
        return outcome

    async def _post(self, target: webhooks.Target, attempt: Attempt) -> int:
        timestamp = int(time.time())
        host, path = _request_parts(attempt.url)
        signature = webhooks.sign(attempt.secret, attempt.msg_id, timestamp, attempt.body)
        headers = {
            "Host": host,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": attempt.msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        key = (target.scheme, target.host, str(target.address), target.port)
        session = self._session(key)
        self.busy[key] += 1
        try:
            async with session.post(
                _connect_url(target, path),
                data=attempt.body,
                headers=headers,
                allow_redirects=False,
                ssl=self.tls if target.scheme == "https" else True,
                server_hostname=target.host if target.scheme == "https" else None,
            ) as response:
                read = 0
                async for chunk in response.content.iter_any():  # read (for keep-alive), dropped
                    read += len(chunk)
                    if read > RESPONSE_READ_MAX:  # the rest unread: aiohttp closes the connection
                        break
        finally:
            self.busy[key] -= 1
            self.used[key] = time.monotonic()
        return response.status

    def _session(self, key: tuple) -> aiohttp.ClientSession:
        self.used[key] = time.monotonic()
        session = self.sessions.get(key)
        if session is None:
            connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=KEEPALIVE_SECONDS)
            session = self.sessions[key] = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("Accept", "Accept-Encoding"),
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None),  # the attempt's own, above
            )
        return session


_made = threading.Lock()
_process_sender: Sender | None = None


def sender() -> Sender:
    """This process's sender, made at its first attempt."""
    global _process_sender
    with _made:
        if _process_sender is None or _process_sender.pid != os.getpid():
            _process_sender = Sender()
        return _process_sender
