"""The load generator of bench.list_cache: wrk, with a Lua script that checks every response.

wrk keeps a fixed number of connections busy for a fixed time (closed loop: each connection
sends its next request when the answer arrives). The script's `response` hook counts answers
that are not 200 or whose X-Cache is not the expected one; defining that hook makes wrk hand
every response's headers and body to Lua, a cost paid alike by every candidate. With a nonce,
each request gets a query string never sent before (`&nonce=RUN-THREAD-N`), so the page cache
misses.
"""

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "LISTBENCH "
SLACK_S = 30  # wrk stops itself after its duration; this only stops a hung one

LUA_COMMON = r"""
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  expect, tag = args[1], args[2]
  responses, non200, unexpected, n = 0, 0, 0, 0
  base = wrk.path
end

function response(status, headers, body)
  responses = responses + 1
  local seen = headers["x-cache"] or headers["X-Cache"]
  if status ~= 200 then
    non200 = non200 + 1
  elseif expect ~= "any" and seen ~= expect then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local r, b, u = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("responses")
    b = b + t:get("non200")
    u = u + t:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p99_us":%.0f,"max_us":%.0f,' ..
    '"responses":%.0f,"non200":%.0f,"unexpected":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f}\n',
    "LISTBENCH ", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.max, r, b, u, e.connect, e.read, e.write, e.status,
    e.timeout))
end
"""

LUA_NONCE = r"""
function request()
  n = n + 1
  return wrk.format(nil, base .. "&nonce=" .. tag .. "-" .. id .. "-" .. n)
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non200: int
    unexpected: int  # a 200 whose X-Cache is not the expected value
    socket_errors: int  # connect, read, write, timeout

    @property
    def rps(self) -> float:
        """Good answers per second: errors (below) do not count."""
        return (self.requests - self.non200 - self.unexpected) / self.seconds

    @property
    def errors(self) -> int:
        """Every answer that did not count: socket errors, non-200, wrong X-Cache."""
        return self.socket_errors + self.non200 + self.unexpected


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0]


def run_wrk(
    url: str,
    token: str,
    *,
    expect: str,
    nonce: bool,
    connections: int,
    threads: int,
    seconds: int,
) -> LoadResult:
    """One wrk run against `url` with the bearer token; its counts and latencies."""
    with tempfile.TemporaryDirectory(prefix="list-cache-wrk-") as scratch:
        script = Path(scratch) / "check.lua"
        script.write_text(LUA_COMMON + (LUA_NONCE if nonce else ""), encoding="utf-8")
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-H",
            f"Authorization: Bearer {token}",
            "-s",
            str(script),
            url,
            "--",
            expect,
            str(time.time_ns()),  # the run's tag in its nonces
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + SLACK_S)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return parse_output(done.stdout)


def parse_output(stdout: str) -> LoadResult:
    """The result line the Lua `done` hook printed."""
    line = next(line for line in stdout.splitlines() if line.startswith(MARKER))
    raw = json.loads(line.removeprefix(MARKER))
    return LoadResult(
        requests=int(raw["requests"]),
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        non200=int(raw["non200"]),
        unexpected=int(raw["unexpected"]),
        socket_errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
    )
