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


def test_ws_latency_delivers_every_event_in_order_to_every_client() -> None:
    from bench import ws_latency

    argv = [
        "--clients",
        "1,5",
        "--writes",
        "3",
        "--warmup",
        "1",
        "--database",
        "taskwire_bench_ws_smoke",
    ]
    result = ws_latency.run(ws_latency.parse_args(argv))
    assert set(result["phases"]) == {(n, s) for n in (1, 5) for s in ("candidate", "reference")}
    for phase in result["phases"].values():
        outcome = phase.outcome
        assert outcome.lost == outcome.out_of_order == outcome.duplicates == 0
        assert len(outcome.latencies_ms) == 3
    assert not any(result["problems"].values())
