"""Benchmark 2 — CPU per record: parse + validate + convert with an in-memory sink vs plain `json.loads`.

Everything runs in this process on the same JSON Lines bytes, timed with the process CPU clock.
Stages are measured separately too, so a missed goal points at the stage that costs: the streaming
reader alone, + conversion to DynamoDB attribute values, + schema validation (the full pipeline).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from decimal import Decimal

from boto3.dynamodb.types import TypeSerializer

from bench import data, subject
from bench.config import BenchConfig
from bench.results import BenchResult

GOAL_RATIO = 3.0


def _cpu_us_per_record(work: Callable[[], int], records: int) -> float:
    started = time.process_time()
    processed = work()
    elapsed = time.process_time() - started
    if processed != records:
        raise RuntimeError(f"processed {processed} of {records} records")
    return 1e6 * elapsed / records


def run(config: BenchConfig) -> BenchResult:
    records = config.cpu_records
    body = data.jsonl_bytes(records)
    lines = body.splitlines()
    stages = subject.cpu_stages()
    result = BenchResult("cpu", "2 CPU per record")
    result.inputs = {
        "records": records,
        "bytes_per_record": round(len(body) / records, 1),
        "runs": config.light_runs,
        "clock": "time.process_time (CPU of this process)",
        "baseline": "json.loads(line) for each line (pre-split bytes)",
        "subject": stages.description,
    }

    def plain_json() -> int:
        loads = json.loads
        for line in lines:
            loads(line)
        return len(lines)

    def obvious_code() -> int:
        """The obvious converter, for reference: Decimal parsing + boto3's TypeSerializer per attribute."""
        loads, serialize = json.loads, TypeSerializer().serialize
        for line in lines:
            record = loads(line, parse_float=Decimal)
            _item = {name: serialize(value) for name, value in record.items()}
        return len(lines)

    measured: dict[str, list[float]] = {
        name: [] for name in ("json.loads", "obvious", "read", "read+convert", "full")
    }
    work: dict[str, Callable[[], int]] = {
        "json.loads": plain_json,
        "obvious": obvious_code,
        "read": lambda: stages.read_only(io.BytesIO(body)),
        "read+convert": lambda: stages.read_convert(io.BytesIO(body)),
        "full": lambda: stages.full(io.BytesIO(body)),
    }
    for stage in work.values():  # warm-up: compile the schema, fill caches; not counted
        _cpu_us_per_record(stage, records)
    for _ in range(config.light_runs):
        for name, stage in work.items():
            measured[name].append(_cpu_us_per_record(stage, records))

    result.add("plain json.loads", "us/record", measured["json.loads"])
    result.add("eventpipe read (stream + parse, Decimal)", "us/record", measured["read"])
    result.add("eventpipe read + convert to item", "us/record", measured["read+convert"])
    result.add("eventpipe parse + validate + convert", "us/record", measured["full"])
    obvious = [full / plain for full, plain in zip(measured["obvious"], measured["json.loads"], strict=True)]
    result.add(
        "reference, obvious code without validation: json.loads(Decimal) + TypeSerializer / json.loads",
        "x",
        obvious,
    )
    ratios = [full / plain for full, plain in zip(measured["full"], measured["json.loads"], strict=True)]
    ratio = result.add("ratio full / json.loads", "x", ratios).median
    result.goal(f"parse + validate + convert <= {GOAL_RATIO:g}x json.loads", ratio, ratio <= GOAL_RATIO)
    return result
