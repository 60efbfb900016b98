"""Benchmark 2 — CPU per record, all-in and by stage, vs plain `json.loads` of the same lines.

Everything runs in this process on the same JSON Lines bytes, timed with the process CPU clock. All-in
is the ingest use case writing through the real `DynamoRecordStore` writer and a real botocore client
configured like the function's, whose HTTP send is answered in process at botocore's documented
`before-send` event: request building, serialization, SigV4 signing and response parsing are counted,
the network is not. Stages come from cumulative pipelines (read + parse; + convert; + validate and the
use case's bookkeeping, items dropped in memory; + encoding each batch's body, as the writer does before
it hands the batch to a pool thread) and from the client's own events (build/sign, parse).
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

GOAL_RATIO = 12.0  # all-in (issue 12); parse + validate + convert alone was judged <= 3x before


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

    clock = subject.ClientStageClock()
    client = subject.stubbed_dynamodb_client(clock)
    work: dict[str, Callable[[], int]] = {
        "json.loads": plain_json,
        "obvious": obvious_code,
        "read": lambda: stages.read_only(io.BytesIO(body)),
        "read+convert": lambda: stages.read_convert(io.BytesIO(body)),
        "full": lambda: stages.full(io.BytesIO(body)),
        "full+encode": lambda: stages.full(io.BytesIO(body), subject.InMemoryStore(encode=True)),
        "all-in": lambda: stages.full(io.BytesIO(body), subject.ClientStore(client)),
        "all-in, one writer": lambda: stages.full(io.BytesIO(body), subject.ClientStore(client, writers=1)),
    }
    measured: dict[str, list[float]] = {name: [] for name in [*work, "build/sign", "response parse"]}
    for stage in work.values():  # warm-up: compile the schema, fill caches; not counted
        _cpu_us_per_record(stage, records)
    for _ in range(config.light_runs):
        for name, stage in work.items():
            clock.build_sign = clock.parse = 0.0
            clock.requests = 0
            measured[name].append(_cpu_us_per_record(stage, records))
        if clock.requests != -(-records // 25):
            raise RuntimeError(f"{clock.requests} BatchWriteItem requests for {records} records")
        measured["build/sign"].append(1e6 * clock.build_sign / records)
        measured["response parse"].append(1e6 * clock.parse / records)

    result.add("plain json.loads", "us/record", measured["json.loads"])
    result.add(
        "all-in: ingest use case through the real client (send answered in process)",
        "us/record",
        measured["all-in"],
    )
    result.add("all-in with one writer (no pool threads)", "us/record", measured["all-in, one writer"])
    result.add("stage read + parse (stream, Decimal)", "us/record", measured["read"])
    result.add("stage convert to item", "us/record", _differences(measured["read+convert"], measured["read"]))
    result.add(
        "stage validate + use case (items kept in memory)",
        "us/record",
        _differences(measured["full"], measured["read+convert"]),
    )
    result.add(
        "stage encode batch body (json.dumps, writer on the caller's thread)",
        "us/record",
        _differences(measured["full+encode"], measured["full"]),
    )
    result.add("stage request build + sign (botocore)", "us/record", measured["build/sign"])
    result.add("stage response parse (botocore)", "us/record", measured["response parse"])
    result.add("cumulative read + convert + validate (no client)", "us/record", measured["full"])
    obvious = [full / plain for full, plain in zip(measured["obvious"], measured["json.loads"], strict=True)]
    result.add(
        "reference, obvious code without validation: json.loads(Decimal) + TypeSerializer / json.loads",
        "x",
        obvious,
    )
    without_client = [
        full / plain for full, plain in zip(measured["full"], measured["json.loads"], strict=True)
    ]
    result.add("ratio read + convert + validate / json.loads (no client)", "x", without_client)
    ratios = [full / plain for full, plain in zip(measured["all-in"], measured["json.loads"], strict=True)]
    ratio = result.add("ratio all-in / json.loads", "x", ratios).median
    result.goal(f"all-in CPU per record <= {GOAL_RATIO:g}x json.loads", ratio, ratio <= GOAL_RATIO)
    return result


def _differences(later: list[float], earlier: list[float]) -> list[float]:
    """Per-run cost of a stage: the cumulative pipeline with it minus the one without it."""
    return [max(0.0, b - a) for b, a in zip(later, earlier, strict=True)]
