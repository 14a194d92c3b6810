"""Checks that the benchmarks run and report, not how fast anything is."""

import pytest

from bench import __main__ as dispatcher
from bench import cold_start, print_table


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a table printed by print_table, split into their cells."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line and set(line) <= {"-", "+"}) + 1
    return [[cell.strip() for cell in line.split("|")] for line in lines[start:] if "|" in line]


def test_print_table_aligns_text_left_and_numbers_right(capsys: pytest.CaptureFixture) -> None:
    print_table([["a", "1.5"], ["bbb", "10.25"]], ("name", "ms"))
    assert capsys.readouterr().out.splitlines() == [
        "name |    ms",
        "-----+------",
        "a    |   1.5",
        "bbb  | 10.25",
    ]


@pytest.mark.parametrize("argv", [[], ["no_such_benchmark"]])
def test_dispatcher_lists_benchmarks_on_a_missing_or_unknown_name(
    argv: list[str], capsys: pytest.CaptureFixture
) -> None:
    assert dispatcher.main(argv) == 2
    assert "cold_start" in capsys.readouterr().err


def test_cold_start_reports_a_row_per_function(capsys: pytest.CaptureFixture) -> None:
    assert cold_start.main(["--repeat", "1", "--warmup", "0"]) == 0
    rows = table_rows(capsys.readouterr().out)
    process_rows = {row[0]: row for row in rows if row[1] == "process"}
    assert set(process_rows) == set(cold_start.FUNCTIONS)
    assert len(rows) == len(cold_start.FUNCTIONS) * len(cold_start.PHASES)
    for row in rows:
        assert float(row[-1]) > 0


def test_ws_latency_reports_a_row_per_client_count_with_no_lost_event(
    capsys: pytest.CaptureFixture,
) -> None:
    """Runs its own servers on the bench database (taskwire_bench), not the suite's."""
    from bench import ws_latency

    assert ws_latency.main(["--clients", "1,5", "--writes", "3", "--warmup", "1"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert [row[0] for row in rows] == ["1", "5"]
    for row in rows:
        named = dict(zip(ws_latency.HEADERS, row, strict=True))
        assert named["lost (candidate)"] == named["lost (reference)"] == "0"
        assert named["ooo/dup (candidate)"] == named["ooo/dup (reference)"] == "0/0"
        for column in ("candidate p99 ms", "reference p99 ms"):
            float(named[column])  # every write reached every client: a number, not n/a
