"""Smoke test of `make bench`'s `scale` section: it runs at a tiny size and reports the issue 12 schema.

Never asserts on time; only on structure and exact counts. In a subprocess, like the other bench smoke
test: the benchmark sets the Lambda environment and starts its own endpoint process.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "scale", "--output", str(output)],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    document: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return document


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
