"""bench.list_cache runs and measures every candidate; not how fast anything is.

A smoke run on a bench database of its own (taskwire_bench_list_smoke: not the full run's 10,000
tasks, which a tiny run would reseed): 300 tasks, 1 s load runs.
"""

import pytest

from bench import _wrk, list_cache


@pytest.mark.skipif(not _wrk.available(), reason="needs wrk")
def test_list_cache_serves_only_expected_answers_and_equal_json() -> None:
    argv = ["--database", "taskwire_bench_list_smoke", "--tasks", "300", "--projects", "3"]
    argv += ["--users", "5", "--duration", "1", "--rounds", "1", "--warmup", "0", "--runs", "2"]
    result = list_cache.run(list_cache.parse_args([*argv, "--connections", "8", "--profile"]))

    assert set(result["load"]) == {"project", "project bare", "all", "all bare", "project 304"}
    for [run] in result["load"].values():
        assert run.good > 0
        assert run.errors == 0
    assert set(list_cache.ratios(result["load"])) == {"project", "all", "project 304 / project"}
    walked = result["walk"]  # the walk's rows were checked equal to PostgreSQL's first
    assert (walked["rows"], walked["pages"]) == (300, 2)
    assert len(walked["walk_ms"]) == len(walked["postgres_ms"]) == 2
    probe = result["json"]  # the two documents were checked equal before timing
    assert probe["tasks"] == 300
    assert probe["all"]["bytes"] > probe["page"]["bytes"] > 0
    assert len(probe["all"]["django_ms"]) == len(probe["all"]["postgres_ms"]) == 2
    assert probe["profile"]
    assert result["problems"] == {"tasks": [], "bare": []}
