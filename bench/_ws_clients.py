"""The client side of bench.ws_latency: N websockets in this process, and writes at a fixed rate.

The same code measures the candidate and the reference. Client i is a member of one project
(`projects[i]`) and connects to `urls[i]`; every client reads all the time and stamps each event
with time.perf_counter() when its reader gets it. An event is known by its `data.id` (the task
id, or the reference's counter), expected at every client of its `project`, checked for order by
its `seq`; an event of another project at a client is counted as foreign.
"""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

CONNECT_BATCH = 50  # handshakes in flight at once
CONNECT_TIMEOUT_S = 30
CLOSE_TIMEOUT_S = 30
NOT_EVENTS = frozenset({"ping", "pong"})

# One write, given its number and project: runs in a worker thread, returns the key (data.id)
# of its event once done (HTTP response read, or PUBLISH answered).
Write = Callable[[int, int], int]


@dataclass
class Delivery:
    """One event's arrivals: client index -> perf_counter at arrival."""

    expected: int
    arrivals: dict[int, float] = field(default_factory=dict)
    complete: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Outcome:
    """What the measured writes of one phase gave."""

    latencies_ms: list[float] = field(default_factory=list)  # signed, writes delivered to all
    delivered: int = 0  # deliveries of the measured writes
    lost: int = 0  # deliveries missing at their timeout
    foreign: int = 0  # events of a project the client is not a member of
    out_of_order: int = 0
    duplicates: int = 0
    closed_early: int = 0  # connections the server closed during the phase
    write_ms: list[float] = field(default_factory=list)  # duration of each write itself
    late_starts: int = 0  # writes that started over 50 ms after their time (the rate not kept)


class Fleet:
    """N websocket clients, each with a reader task recording every event."""

    def __init__(self, urls: list[str], projects: list[int]) -> None:
        self.urls, self.projects = urls, projects
        self.members = Counter(projects)
        self.connections: list[ClientConnection] = []
        self.readers: list[asyncio.Task] = []
        self.deliveries: dict[int, Delivery] = {}
        self.last_seq: list[int | None] = [None] * len(urls)
        self.foreign = self.out_of_order = self.duplicates = self.closed_early = 0
        self.closing = False

    async def open(self) -> float:
        """Connect every client, CONNECT_BATCH at a time; the seconds it took."""
        started = time.perf_counter()
        for begin in range(0, len(self.urls), CONNECT_BATCH):
            urls = self.urls[begin : begin + CONNECT_BATCH]
            results = await asyncio.gather(*map(self._connect, urls), return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            for connection in results:
                if not isinstance(connection, BaseException):
                    self._adopt(connection)
            if failures:
                raise RuntimeError(
                    f"{len(failures)} of {len(urls)} connections to {urls[0].split('?')[0]} "
                    f"failed ({len(self.connections)} open): {failures[0]!r}"
                )
        return time.perf_counter() - started

    async def _connect(self, url: str) -> ClientConnection:
        return await connect(
            url,
            open_timeout=CONNECT_TIMEOUT_S,
            ping_interval=None,
            close_timeout=5,
            compression=None,
        )

    def _adopt(self, connection: ClientConnection) -> None:
        index = len(self.connections)
        self.connections.append(connection)
        self.readers.append(asyncio.create_task(self._read(index, connection)))

    async def _read(self, index: int, connection: ClientConnection) -> None:
        try:
            async for text in connection:
                arrived = time.perf_counter()
                message = json.loads(text)
                if message.get("type") not in NOT_EVENTS:
                    self._record(index, message, arrived)
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                self.closed_early += 1

    def _record(self, index: int, message: dict[str, Any], arrived: float) -> None:
        if message.get("project") != self.projects[index]:
            self.foreign += 1
            return
        delivery = self.delivery(message["data"]["id"], message["project"])
        if index in delivery.arrivals:
            self.duplicates += 1
            return
        delivery.arrivals[index] = arrived
        last = self.last_seq[index]
        if last is not None and message["seq"] < last:
            self.out_of_order += 1
        else:
            self.last_seq[index] = message["seq"]
        if len(delivery.arrivals) >= delivery.expected:
            delivery.complete.set()

    def delivery(self, key: int, project: int) -> Delivery:
        if key not in self.deliveries:
            self.deliveries[key] = Delivery(expected=self.members[project])
        return self.deliveries[key]

    async def close(self) -> None:
        """Close every connection (abort those that do not close in time); stop the readers."""
        self.closing = True
        closes = [connection.close() for connection in self.connections]
        try:
            await asyncio.wait_for(asyncio.gather(*closes, return_exceptions=True), CLOSE_TIMEOUT_S)
        except TimeoutError:
            for connection in self.connections:
                connection.transport.abort()
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


def _timed(write: Write, number: int, project: int) -> tuple[int, float, float]:
    """Run a write, stamped in its own thread: the stamps do not wait for the busy event loop."""
    started = time.perf_counter()
    key = write(number, project)
    return key, started, time.perf_counter()


async def timed_write(
    fleet: Fleet, write: Write, number: int, project: int, timeout_s: float, outcome: Outcome
) -> None:
    """Do one write and wait for its event at every member client. Adds to the outcome the
    signed latency in ms from the write's return to the last arrival, or, when some client has
    not got the event within timeout_s, the missing deliveries as lost."""
    key, started, returned = await asyncio.to_thread(_timed, write, number, project)
    outcome.write_ms.append((returned - started) * 1000)
    delivery = fleet.delivery(key, project)
    try:
        await asyncio.wait_for(delivery.complete.wait(), timeout_s)
    except TimeoutError:
        outcome.lost += delivery.expected - len(delivery.arrivals)
        return
    finally:
        outcome.delivered += len(delivery.arrivals)
    outcome.latencies_ms.append((max(delivery.arrivals.values()) - returned) * 1000)


async def run_writes(
    fleet: Fleet, write: Write, numbers: range, rate: float, timeout_s: float
) -> Outcome:
    """Writes started at `rate` a second whatever their answers (open loop), the i-th in the
    i-th of the fleet's projects in turn, each waited for at its project's clients; the
    counts are those of these writes only."""
    fleet.foreign = fleet.out_of_order = fleet.duplicates = 0
    outcome, projects, waits = Outcome(), sorted(fleet.members), []
    began = time.perf_counter()
    for offset, number in enumerate(numbers):
        due = began + offset / rate
        if (pause := due - time.perf_counter()) > 0:
            await asyncio.sleep(pause)
        elif pause < -0.05:
            outcome.late_starts += 1
        project = projects[offset % len(projects)]
        waits.append(
            asyncio.create_task(timed_write(fleet, write, number, project, timeout_s, outcome))
        )
    await asyncio.gather(*waits)
    outcome.foreign, outcome.out_of_order = fleet.foreign, fleet.out_of_order
    outcome.duplicates, outcome.closed_early = fleet.duplicates, fleet.closed_early
    return outcome
