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


def table_rows(output: str, headers: tuple[str, ...]) -> list[dict[str, str]]:
    """The body rows, by header, of the table print_table wrote under exactly these headers."""
    lines = output.splitlines()
    title = next(i for i, line in enumerate(lines) if line.split(" | ")[0].strip() == headers[0])
    rows = []
    for line in lines[title + 2 :]:
        if "|" not in line:
            break
        cells = [cell.strip() for cell in line.split("|")]
        rows.append(dict(zip(headers, cells + [""] * (len(headers) - len(cells)), strict=True)))
    return rows
