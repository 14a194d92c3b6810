"""The benches run and measure; not how fast anything is. Their servers use bench databases."""

import pytest

from bench import __main__ as dispatcher
from bench import cold_start, print_table


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
    assert "writes" in capsys.readouterr().err


def test_cold_start_times_every_phase_of_every_function_and_the_reference() -> None:
    result = cold_start.run(cold_start.parse_args(["--repeat", "1", "--warmup", "0"]))
    assert set(result["samples"]) == set(cold_start.FUNCTIONS)
    for sides in result["samples"].values():
        for [sample] in (sides["candidate"], sides["reference"]):
            assert set(sample) == set(cold_start.PHASES)
            assert all(ms > 0 for ms in sample.values())
    assert result["importtime"] is None


def test_ws_latency_delivers_every_event_to_its_project_members_only() -> None:
    from bench import ws_latency

    argv = ["--clients", "12", "--projects", "3", "--rate", "10", "--seconds", "1"]
    argv += ["--warmup", "0.3", "--database", "taskwire_bench_ws_smoke"]
    result = ws_latency.run(ws_latency.parse_args(argv))

    assert set(result["phases"]) == {(12, "candidate"), (12, "reference")}
    for [phase] in result["phases"].values():
        outcome = phase.outcome
        assert outcome.lost == outcome.foreign == outcome.out_of_order == outcome.duplicates == 0
        assert len(outcome.latencies_ms) == 10
        assert outcome.delivered == 10 * 4  # each write to the 4 clients of its project
        assert phase.cpu_ms >= 0
    assert set(ws_latency.ratios(result["phases"], 12)) == {"cpu", "p99"}
    assert not any(result["problems"].values())
