"""Benchmarks of Taskwire beside references: `python -m bench NAME`.

Each bench NAME.py has `run(...)`, which measures and returns its data (its test checks that),
and `main(argv)`, which parses options, runs and prints the tables. The shared harness:
bench._procs (databases, child processes, servers, CPU), bench._wrk (load), and here the tables
and statistics.
"""

import statistics
from collections.abc import Iterable, Sequence
from math import floor


def median(values: Iterable[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` quantile, interpolated linearly between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


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
