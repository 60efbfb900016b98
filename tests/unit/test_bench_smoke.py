"""Smoke test of `make bench`: the harness runs end to end at tiny sizes and reports correct figures.

Never asserts on time (figures depend on the machine); only on structure and on exact counts.
The harness runs in a subprocess: it starts its own moto server and sets the handler's environment,
which must not leak into other tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.bench_harness.subprocess_run import run_bench

CHEAP_BENCHMARKS = ("throughput", "cpu", "memory", "cold_start")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    return run_bench(output, "--scale", "0.01", "--runs", "1", "--quick", "--only", *CHEAP_BENCHMARKS)


def test_report_describes_the_machine_and_the_run(report: dict[str, Any]) -> None:
    assert report["machine"]["cores"] >= 1
    assert report["machine"]["python"].startswith("CPython 3.")
    assert report["config"]["throughput_records"] == 200
    assert report["config"]["benchmarks"] == list(CHEAP_BENCHMARKS)


@pytest.mark.parametrize("name", CHEAP_BENCHMARKS)
def test_every_benchmark_reports_metrics_and_goals_without_error(report: dict[str, Any], name: str) -> None:
    benchmark = report["benchmarks"][name]
    assert benchmark["error"] is None
    assert benchmark["inputs"]
    assert benchmark["goals"], "each benchmark is judged against its goal from issue 6"
    for metric in benchmark["metrics"]:
        assert metric["runs"] >= 1
        assert metric["min"] <= metric["median"] <= metric["max"]
        assert metric["median"] > 0 or "per 1,000" in metric["name"]


def _metric(report: dict[str, Any], benchmark: str, prefix: str) -> dict[str, Any]:
    matches = [m for m in report["benchmarks"][benchmark]["metrics"] if m["name"].startswith(prefix)]
    assert len(matches) == 1, f"{prefix!r} in {benchmark}"
    return matches[0]


def test_ingest_sends_one_batch_write_per_25_records(report: dict[str, Any]) -> None:
    # 200 records, all stored (the harness verifies the table) -> ceil(200 / 25) = 8 requests.
    batches = _metric(report, "throughput", "BatchWriteItem requests per 1,000")
    assert batches["median"] == 40
    [request_goal] = [
        g for g in report["benchmarks"]["throughput"]["goals"] if "BatchWriteItem" in g["description"]
    ]
    assert request_goal["met"] is True


def test_tutorial_baseline_sends_one_request_per_record(report: dict[str, Any]) -> None:
    assert _metric(report, "throughput", "tutorial write requests per 1,000")["median"] == 1000


def test_memory_probe_read_every_record_of_the_object(report: dict[str, Any]) -> None:
    memory = report["benchmarks"]["memory"]
    assert memory["inputs"]["records"] > 0
    assert memory["inputs"]["object_bytes"] >= 256 * 1024
