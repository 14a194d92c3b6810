"""Benchmarks of Taskwire beside references: `python -m bench NAME`.

Each bench NAME.py has `run(...)`, which measures and returns its data (its test checks that),
and `main(argv)`, which parses options, runs and prints the tables. The shared harness:
bench._procs (databases, child processes, servers, CPU), bench._wrk (load), bench._child (the
Django side: statements, profiles) and here timing, turns, statistics and tables.
"""

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from math import floor
from typing import Any, TypeVar

T = TypeVar("T")


def median(values: Iterable[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` quantile, interpolated linearly between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timed(function: Callable[..., T], *args: Any) -> tuple[float, T]:
    """(wall ms, result) of one call."""
    started = time.perf_counter()
    result = function(*args)
    return (time.perf_counter() - started) * 1000, result


def taking_turns(
    measures: dict[str, Callable[[], T]], rounds: int, start: int = 0
) -> dict[str, list[T]]:
    """`rounds` samples of each measure, the order rotating by one every round (from `start`),
    so that a drift of the machine hits every candidate alike."""
    names = list(measures)
    samples: dict[str, list[T]] = {name: [] for name in names}
    for round_ in range(start, start + rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measures[name]())
    return samples


def verdict(met: bool) -> str:
    return "yes" if met else "NO"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str], title: str = "") -> None:
    """Print rows under headers as an aligned text table: numeric columns right, text left."""
    cells = [[str(cell) for cell in row] for row in rows]
    columns = list(zip(headers, *cells, strict=True))
    widths = [max(len(text) for text in column) for column in columns]
    right = [bool(cells) and all(_is_number(text) for text in column[1:]) for column in columns]

    def line(values: Sequence[str]) -> str:
        aligned = [
            value.rjust(width) if is_right else value.ljust(width)
            for value, width, is_right in zip(values, widths, right, strict=True)
        ]
        return " | ".join(aligned).rstrip()

    if title:
        print(f"\n{title}")
    print(line(headers))
    print("-+-".join("-" * width for width in widths))
    for row in cells:
        print(line(row))


def print_problems(problems: dict[str, list[str]]) -> None:
    """The warning and error lines of each server's log, the first five of each."""
    for name, lines in problems.items():
        print(f"{name} log: {len(lines)} warning/error lines", *lines[:5], sep="\n  ")
