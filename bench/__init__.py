"""Benchmarks of Taskwire against a reference, run with `python -m bench NAME`."""

from collections.abc import Sequence


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
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

    print(line(headers))
    print("-+-".join("-" * width for width in widths))
    for row in cells:
        print(line(row))
