"""A bench's Django side: `python -m bench._child MODULE:FUNCTION JSON-KWARGS`.

Sets Django up (settings from the environment bench._procs gives it), imports MODULE, calls
FUNCTION(**kwargs) and prints its result as one JSON line. The module's functions share the
tools here: the statements a call runs, and where a call's time goes (cProfile).
"""

import cProfile
import importlib
import json
import pstats
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import django

LABEL_LIMIT = 150
REPO = Path(__file__).resolve().parent.parent


def label(sql: str) -> str:
    """A statement on one line, cut to LABEL_LIMIT."""
    text = " ".join(sql.split())
    return text if len(text) <= LABEL_LIMIT else f"{text[: LABEL_LIMIT - 3]}..."


@contextmanager
def recording() -> Iterator[list[tuple[str, float]]]:
    """Every statement run inside: (label, ms in execute). BEGIN and COMMIT, which psycopg sends
    itself, are not among them."""
    from django.db import connection

    statements: list[tuple[str, float]] = []

    def record(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((label(sql), (time.perf_counter() - started) * 1000))

    with connection.execute_wrapper(record):
        yield statements


def _short(key: tuple[str, int, str]) -> str:
    path, line, function = key
    for marker in ("site-packages/", "/python3.11/", f"{REPO}/"):
        path = path.split(marker, 1)[-1]
    return f"{path}:{line}({function})" if line else function


def profiled(
    function: Callable[[], Any], clock: Callable[[], float] = time.perf_counter
) -> list[tuple[str, int, float, float]]:
    """One call under cProfile: (function, calls, own ms, cumulative ms) of everything it ran,
    by own time."""
    profiler = cProfile.Profile(clock)
    profiler.runcall(function)
    stats = pstats.Stats(profiler).stats  # key -> (primitive calls, calls, own s, cum s, ...)
    rows = [(_short(key), v[1], v[2] * 1e3, v[3] * 1e3) for key, v in stats.items()]
    return sorted(rows, key=lambda row: row[2], reverse=True)


def main(target: str, kwargs: str) -> None:
    django.setup(set_prefix=False)
    module, function = target.split(":")
    result = getattr(importlib.import_module(module), function)(**json.loads(kwargs))
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
