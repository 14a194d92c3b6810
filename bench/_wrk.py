"""The load generator of the HTTP benches: wrk, with a Lua script that checks every response.

wrk keeps a fixed number of connections busy for a fixed time (closed loop). The `response` hook
counts answers whose status or X-Cache is not the expected one (a cost paid alike by every
candidate); a bench may add its own `request()` (Lua) to vary the requests, with `id` (the
thread's number), `n` (its request count) and `tag` (unique per run) at hand.
"""

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "BENCHWRK "
SLACK_S = 30  # wrk stops itself after its duration; this only stops a hung one

LUA = r"""
local threads, counter = {}, 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  status_wanted, cache_wanted, tag = tonumber(args[1]), args[2], args[3]
  bad, n = 0, 0
end
function response(status, headers, body)
  local cache = headers["x-cache"] or headers["X-Cache"]
  if status ~= status_wanted or (cache_wanted ~= "any" and cache ~= cache_wanted) then
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%.0f,"us":%.0f,"p50":%.0f,"p99":%.0f,"max":%.0f,"bad":%.0f,"socket":%.0f}\n',
    "BENCHWRK ", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.max, b, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    bad: int  # answered, but not with the expected status or X-Cache
    socket_errors: int  # connect, read, write, timeout

    @property
    def good(self) -> int:
        return self.requests - self.bad

    @property
    def rps(self) -> float:
        """Good answers per second."""
        return self.good / self.seconds

    @property
    def errors(self) -> int:
        return self.bad + self.socket_errors


def available() -> bool:
    return shutil.which("wrk") is not None


def version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0]


def run_wrk(
    url: str,
    token: str,
    *,
    seconds: int,
    connections: int,
    threads: int = 1,
    status: int = 200,
    cache: str = "any",
    request_lua: str = "",
) -> LoadResult:
    """One wrk run against `url` with the bearer token; its counts and latencies."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        script = Path(scratch) / "check.lua"
        script.write_text(LUA + request_lua, encoding="utf-8")
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        command += ["-H", f"Authorization: Bearer {token}", "-s", str(script), url]
        command += ["--", str(status), cache, str(time.time_ns())]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + SLACK_S)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    line = next(line for line in done.stdout.splitlines() if line.startswith(MARKER))
    raw = json.loads(line.removeprefix(MARKER))
    return LoadResult(
        requests=int(raw["requests"]),
        seconds=raw["us"] / 1e6,
        p50_ms=raw["p50"] / 1000,
        p99_ms=raw["p99"] / 1000,
        max_ms=raw["max"] / 1000,
        bad=int(raw["bad"]),
        socket_errors=int(raw["socket"]),
    )
