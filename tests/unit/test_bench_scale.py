"""Smoke test of `make bench`'s `scale` section: it runs at a tiny size and reports the issue 12 schema.

Never asserts on time; only on structure and exact counts. In a subprocess, like the other bench smoke
test: the benchmark sets the Lambda environment and starts its own endpoint process.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.unit.bench_harness.subprocess_run import run_bench


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_bench(tmp_path_factory.mktemp("bench") / "results.json", "--quick", "--only", "scale")


def test_the_scale_section_has_the_designed_shape(report: dict[str, Any]) -> None:
    scale = report["scale"]

    assert scale["latency_model"]["per_request_ms"] == 15
    assert set(scale["records_per_second_by_writers"]) == {"1", "2", "4", "8", "16"}
    assert all(rate > 0 for rate in scale["records_per_second_by_writers"].values())
    gb_seconds = scale["lambda_gb_seconds_per_million_records"]
    assert gb_seconds["writers"] == 16
    assert gb_seconds["sequential"] > 0
    assert gb_seconds["pool"] > 0
    assert "large_object" in scale
    projected = scale["projected_minutes_for_25M_records"]
    assert projected["minutes"] > 0
    assert set(projected["inputs"]) >= {"records", "fanout_max_concurrency", "table_write_quota_wru"}


def test_the_projection_is_judged_against_the_time_the_table_quota_allows(report: dict[str, Any]) -> None:
    from infra.config import load_config

    projected = report["scale"]["projected_minutes_for_25M_records"]
    inputs = projected["inputs"]
    goal = next(
        g for g in report["benchmarks"]["scale"]["goals"] if g["description"].startswith("25M records")
    )

    # 25M records at 40,000 write units/s, one unit per record: 625 s
    assert projected["quota_minutes"] == round(25_000_000 / 40_000 / 60, 2)
    assert goal["measured"] == projected["ratio_to_quota"]
    assert goal["met"] == (projected["ratio_to_quota"] <= 1.25)
    assert inputs["fanout_memory_mb"] == load_config(lambda _: None).fanout_memory_mb
    minutes = (inputs["serial_seconds"] + inputs["write_seconds"]) / 60
    assert projected["minutes"] == pytest.approx(minutes, abs=0.01)


def test_the_memory_is_the_ingest_functions_configured_memory(report: dict[str, Any]) -> None:
    from infra.config import load_config
    from infra.registry import CONSUMERS

    ingest = next(consumer for consumer in CONSUMERS if consumer.name == "ingest")
    configured = load_config(lambda _: None).memory_mb(ingest)

    assert report["scale"]["lambda_gb_seconds_per_million_records"]["memory_mb"] == configured


def test_every_pool_size_sends_exactly_ceil_records_over_25_batch_writes(report: dict[str, Any]) -> None:
    result = report["benchmarks"]["scale"]
    records = result["inputs"]["records"]
    exact = next(goal for goal in result["goals"] if goal["description"].startswith("exactly ceil"))

    assert exact["measured"] == math.ceil(records / 25)
    assert exact["met"] is True
    assert result["error"] is None
