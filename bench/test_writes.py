"""bench.writes runs and measures both servers; not how fast anything is.

A smoke run on a bench database of its own (taskwire_bench_writes_smoke), 1 s per load run.
"""

import pytest

from bench import _wrk, writes


@pytest.mark.skipif(not _wrk.available(), reason="needs wrk")
def test_writes_measures_every_method_on_both_servers_without_errors() -> None:
    argv = ["--database", "taskwire_bench_writes_smoke", "--tasks", "100", "--projects", "10"]
    argv += ["--duration", "1", "--rounds", "1", "--warmup", "0", "--connections", "2"]
    result = writes.run(writes.parse_args([*argv, "--profile", "3"]))

    assert result["same_answer"]
    assert result["problems"] == {"candidate": [], "reference": []}
    assert [write.method for write in result["writes"]] == ["PUT", "PATCH", "POST"]
    for write in result["writes"]:
        assert write.errors() == 0
        for server in writes.APPS:
            [run] = write.runs[server]
            assert run.load.good > 0
            assert run.cpu_s > 0
    assert set(result["profile"]["cpu_ms"]["PUT"]) == set(writes.APPS)
    assert any("services.py" in row[0] for row in result["profile"]["top"]["PUT"]["ours"])
