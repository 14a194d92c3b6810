"""Where bench.writes's CPU goes: each write in-process through Django's test client.

Run by bench.writes in a Django child (bench._child) on its bench database: per method, the
CPU time per request of the candidate's urlconf and the reference's (profiler off), then the
candidate's requests under cProfile, its top functions by cumulative time.
"""

import json
import time
from functools import partial

from django.test import Client, override_settings

from bench._child import profiled
from bench.writes import BODIES

URLCONFS = {"candidate": "functions.tasks.urls", "reference": "bench._writes_reference"}
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


def _top(client: Client, method: str, pairs: list, count: int) -> dict[str, list[list[str]]]:
    """Under cProfile (CPU time), per request: the top functions by own time, and the project's
    own by cumulative time."""
    with override_settings(ROOT_URLCONF=URLCONFS["candidate"]):
        requests = partial(_requests, client, method, pairs, count, "profiled")
        rows = profiled(requests, time.process_time)
    ours = [row for row in rows if row[0].startswith(("common/", "functions/"))]
    ours = sorted(ours, key=lambda row: row[3], reverse=True)
    return {"own": _format(rows[:TOP], count), "ours": _format(ours[:TOP], count)}


def _format(rows: list[tuple[str, int, float, float]], count: int) -> list[list[str]]:
    per_request = [(name, n / count, own / count, cum / count) for name, n, own, cum in rows]
    return [[name, f"{n:g}", f"{own:.2f}", f"{cum:.2f}"] for name, n, own, cum in per_request]


def profile(token: str, pairs: list, requests: int, methods: list[str]) -> dict:
    """Per method, CPU ms per request of both urlconfs, and the candidate's top functions."""
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
    cpu_ms: dict[str, dict[str, float]] = {method: {} for method in methods}
    top = {}
    for name, urlconf in URLCONFS.items():
        for method in methods:
            cpu_ms[method][name] = _cpu_ms(client, method, pairs, requests, urlconf)
            if name == "candidate":
                top[method] = _top(client, method, pairs, requests)
    return json.loads(json.dumps({"cpu_ms": cpu_ms, "top": top}))
