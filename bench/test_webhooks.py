"""bench.webhooks runs and checks its own work; not how fast anything is.

A tiny run (100 events in each phase to 5 webhooks) on a bench database of its own.
"""

from bench import webhooks


def test_webhooks_delivers_every_event_once_and_measures_both_sides() -> None:
    argv = ["--database", "taskwire_bench_webhooks_smoke", "--events", "100", "--webhooks", "5"]
    result = webhooks.run(webhooks.parse_args([*argv, "--timeout", "120"]))

    reference, throughput, latency = result["reference"], result["throughput"], result["latency"]
    assert (reference["received"], reference["duplicates"]) == (200, 0)  # run twice
    assert reference["rate"] > 0
    for phase in (throughput, latency):
        assert (phase["received"], phase["lost"], phase["duplicates"]) == (100, 0, 0)
        assert phase["unexpected"] == 0
    assert throughput["rate"] > 0
    assert 0 < latency["p50_ms"] <= latency["p99_ms"]
    assert latency["cpu_ms_per_delivery"] > 0
    assert result["deliveries"] == {"succeeded": 200}
    assert result["problems"] == {"receiver": [], "worker0": [], "worker1": []}
