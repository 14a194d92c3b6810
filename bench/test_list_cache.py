"""Checks that bench.list_cache runs and reports, not how fast anything is.

Its servers and probes are subprocesses with an environment of their own, on a bench database
(taskwire_listbench_tiny: not the suite's, and not the full run's 10,000 tasks, which a tiny
run would otherwise reseed); the run is a tiny one (300 tasks, 1 s load runs).
"""

import pytest

from bench import _list_cache_load, list_cache, table_rows


@pytest.mark.skipif(_list_cache_load.wrk_path() is None, reason="needs wrk")
def test_list_cache_reports_only_hits_for_the_cached_run_and_positive_ratios(
    capsys: pytest.CaptureFixture,
) -> None:
    argv = ["--database", "taskwire_listbench_tiny", "--tasks", "300", "--projects", "3"]
    argv += ["--users", "5", "--duration", "1", "--rounds", "1", "--warmup", "0", "--runs", "2"]
    argv += ["--connections", "8"]
    assert list_cache.main(argv) == 0
    out = capsys.readouterr().out

    load = {row["candidate"]: row for row in table_rows(out, list_cache.LOAD_HEADERS)}
    assert set(load) == {"cached", "bare", "uncached"}
    for row in load.values():
        assert int(row["requests"]) > 0
        assert row["errors"] == row["of which wrong X-Cache"] == "0"
        assert float(row["req/s"]) > 0

    ratios = table_rows(out, list_cache.RATIO_HEADERS)
    assert len(ratios) == 4
    assert all(float(row["value"]) > 0 for row in ratios)

    json_rows = table_rows(out, list_cache.JSON_HEADERS)
    assert json_rows[0]["tasks"] == "300"
    assert len(json_rows) == 3
    assert all(float(row["ratio"]) > 0 for row in json_rows)
