"""Where bench.writes's CPU goes: each write in-process through Django's test client.

Run by bench.writes in a Django child (bench._child) on its bench database: per method, the
CPU time per request of the candidate's urlconf and the reference's (profiler off), then the
candidate's requests under cProfile, its top functions by cumulative time.
"""

import cProfile
import json
import pstats
import time
from pathlib import Path

from django.test import Client, override_settings

from bench.writes import BODIES

URLCONFS = {"candidate": "functions.tasks.urls", "reference": "bench._writes_reference"}
REPO = Path(__file__).resolve().parent.parent
TOP = 12


def _requests(client: Client, method: str, pairs: list, count: int, tag: str) -> None:
    for number in range(count):
        task, project = pairs[number % len(pairs)]
        title = f"profile {tag} {number}"
        body = BODIES[method].replace("%d", str(project)).replace("%s", title)
        path = "/tasks/" if method == "POST" else f"/tasks/{task}/"
        answer = client.generic(method, path, body, content_type="application/json")
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.content[:300]}")


def _cpu_ms(client: Client, method: str, pairs: list, count: int, urlconf: str) -> float:
    with override_settings(ROOT_URLCONF=urlconf):
        _requests(client, method, pairs, 10, "warm")
        started = time.process_time()
        _requests(client, method, pairs, count, "timed")
        return (time.process_time() - started) * 1000 / count


def _short(key: tuple[str, int, str]) -> str:
    path, line, function = key
    for marker in ("site-packages/", "/python3.11/", f"{REPO}/"):
        path = path.split(marker, 1)[-1]
    return f"{path}:{line}({function})" if line else function


def _top(client: Client, method: str, pairs: list, count: int) -> dict[str, list[list[str]]]:
    """Under cProfile (CPU time): the top functions by own time, and the project's own by
    cumulative time."""
    profiler = cProfile.Profile(time.process_time)
    with override_settings(ROOT_URLCONF=URLCONFS["candidate"]):
        profiler.runcall(_requests, client, method, pairs, count, "profiled")
    stats = pstats.Stats(profiler).stats  # key -> (primitive calls, calls, own s, cum s, ...)
    rows = [
        (_short(key), calls / count, own * 1e3 / count, cum * 1e3 / count)
        for key, (_, calls, own, cum, _) in stats.items()
    ]
    ours = [row for row in rows if row[0].startswith(("common/", "functions/"))]
    return {
        "own": _format(sorted(rows, key=lambda row: row[2], reverse=True)[:TOP]),
        "ours": _format(sorted(ours, key=lambda row: row[3], reverse=True)[:TOP]),
    }


def _format(rows: list[tuple[str, float, float, float]]) -> list[list[str]]:
    return [[name, f"{calls:g}", f"{own:.2f}", f"{cum:.2f}"] for name, calls, own, cum in rows]


def profile(token: str, pairs: list, requests: int, methods: list[str]) -> dict:
    """The candidate first: importing the reference's urlconf takes a cache signal off."""
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
    cpu_ms: dict[str, dict[str, float]] = {method: {} for method in methods}
    top = {}
    for name, urlconf in URLCONFS.items():
        for method in methods:
            cpu_ms[method][name] = _cpu_ms(client, method, pairs, requests, urlconf)
            if name == "candidate":
                top[method] = _top(client, method, pairs, requests)
    return json.loads(json.dumps({"cpu_ms": cpu_ms, "top": top}))
