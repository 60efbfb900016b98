"""Benchmark 3 — memory: peak RSS above the process baseline while ingesting a large JSON Lines object.

The object (200 MB at full scale) lives in the parent's embedded moto S3; each measurement is a fresh
child process (`bench.memory_probe`) that streams it with GetObject, so nothing from an earlier run or
from the emulator is counted. The child reads VmRSS just before ingesting and VmHWM after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench import data
from bench.aws import EmbeddedAws
from bench.config import BenchConfig
from bench.results import BenchResult
from bench.subject import handler_environment

GOAL_MB = 64


def _probe(config: BenchConfig, aws: EmbeddedAws, mode: str, bucket: str, key: str) -> dict[str, Any]:
    env = os.environ | handler_environment(aws.endpoint) | {"PYTHONPATH": str(config.project_root)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.memory_probe", mode, aws.endpoint, bucket, key],
        env=env,
        cwd=config.project_root,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"memory probe ({mode}) failed: {last}")
    measured: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return measured


def run(config: BenchConfig, aws: EmbeddedAws) -> BenchResult:
    result = BenchResult("memory", "3 memory")
    config.work_dir.mkdir(parents=True, exist_ok=True)
    path = config.work_dir / f"memory-{os.getpid()}.jsonl"  # per process: runs may overlap
    aws.reset()
    resources = aws.create_contract_resources()
    key = "bench/large object.jsonl"
    try:
        records = data.write_jsonl_of_size(path, config.memory_object_bytes)
        size = path.stat().st_size
        with path.open("rb") as body:
            aws.client("s3").put_object(Bucket=resources.bucket, Key=key, Body=body)
    finally:
        path.unlink(missing_ok=True)  # the copy in the emulator is the one measured
    result.inputs = {
        "object_bytes": size,
        "records": records,
        "runs": config.memory_runs,
        "source": "GetObject stream from the embedded moto server (parent process)",
        "subject": "functions.core.use_cases.ingest.ingest_object on the S3 body, in-memory RecordStore",
        "baseline": "GetObject body .read() whole, decode, splitlines, json per line (fresh process per run)",
        "measure": "VmHWM - VmRSS just before ingesting (/proc/self/status; peak reset via clear_refs)",
    }
    streamed: list[float] = []
    whole: list[float] = []
    baselines: list[float] = []
    for _ in range(config.memory_runs):
        stream_run = _probe(config, aws, "stream", resources.bucket, key)
        whole_run = _probe(config, aws, "whole", resources.bucket, key)
        for run_result in (stream_run, whole_run):
            if run_result["records"] != records:
                raise RuntimeError(f"{run_result['mode']} read {run_result['records']} of {records} records")
        streamed.append(stream_run["above_baseline_mb"])
        whole.append(whole_run["above_baseline_mb"])
        baselines.append(stream_run["baseline_mb"])
        if not (stream_run["peak_reset"] and whole_run["peak_reset"]):
            result.notes.append("VmHWM could not be reset: the peak may include import-time memory")
    peak = result.add("ingest (streaming): peak above baseline", "MiB", streamed).median
    result.add("read whole: peak above baseline", "MiB", whole)
    result.add("process baseline before ingest", "MiB", baselines)
    result.goal(
        f"peak < {GOAL_MB} MB above baseline for a {size / 2**20:.0f} MiB object", peak, peak < GOAL_MB
    )
    aws.reset()
    return result
