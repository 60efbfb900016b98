"""Benchmark 6 — scale (issue 12): one ingest invocation under a DynamoDB round trip of 15 ms.

The real use case (`ingest_object`) runs with the services the Lambda wiring builds (`base_services`: the
real record store, a real botocore client with the function's config, WRITERS from the environment)
against `LatencyEndpoint`, which answers every request after 15 ms. The object is read from memory and
the rejects report kept in memory: S3's latency is not part of the model. Measured for 1..16 writers:
records/s, process CPU, requests. From those: Lambda GB-s per million records (billed duration x the
ingest function's configured memory) and a projection for 25 million records under the table's quota.

Writes `scale` into bench/results.json (`write_section`), schema in the issue 12 design.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3

from bench import data, subject
from bench.aws import BUCKET, RUN_CREDENTIALS, WriteRequestCounter
from bench.config import BenchConfig
from bench.events import object_created, sequencer
from bench.latency_endpoint import LatencyEndpoint
from bench.results import BenchResult
from bench.throughput import Stopwatch, Timing
from functions.core.adapters.dynamodb_batch_writer import BATCH_WRITE_LIMIT, DEFAULT_WRITERS
from functions.core.wiring import env as names
from infra.config import load_config
from infra.registry import CONSUMERS

LATENCY_MS = 15
WRITER_COUNTS = (1, 2, 4, 8, 16)
RECORDS = 20_000  # per invocation at scale 1.0
KEY = "bench/scale.jsonl"  # the default dataset: position-keyed, the kind that fans out
# DynamoDB developer guide, "Service, account, and table quotas in Amazon DynamoDB": on-demand tables
# default to 40,000 write request units per second per table (adjustable); a write of an item up to 1 KB
# is one write request unit ("Request unit sizes (for on-demand tables)").
TABLE_WRITE_QUOTA_WRU = 40_000
PROJECTED_RECORDS = 25_000_000
# Lambda developer guide, "Configure Lambda function memory": CPU is allocated in proportion to memory;
# at 1,769 MB a function has the equivalent of one vCPU.
LAMBDA_MB_PER_VCPU = 1769
# Issue 12's goal: the projected time within 1.25x of what the table's write quota allows.
PROJECTION_GOAL_RATIO = 1.25
# An assumption, not an AWS figure: what one invocation reads from S3 per second (parallel ranged GETs)
# while it counts the newlines before each range start.
ASSUMED_S3_READ_BYTES_PER_SECOND = 100 * 1024 * 1024


@dataclass(slots=True)
class ScaleResult(BenchResult):
    """A benchmark result plus the `scale` section of results.json."""

    section: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Invocation:
    writers: int
    records: int
    timing: Timing
    batch_writes: int

    @property
    def rate(self) -> float:
        return self.records / self.timing.wall


def _defaults_only(_: str) -> Any:
    """A CDK context with nothing set: infra/config.py's defaults for the default stage."""
    return None


def ingest_memory_mb() -> int:
    """The ingest function's memory in the default stage configuration (infra/config.py defaults)."""
    ingest = next(consumer for consumer in CONSUMERS if consumer.name == "ingest")
    return load_config(_defaults_only).memory_mb(ingest)


@contextmanager
def _lambda_environment(endpoint: str) -> Any:
    """The ingest function's environment pointed at `endpoint`; the previous one restored afterwards."""
    from functions.core.wiring import lambda_services, settings

    wanted = {**RUN_CREDENTIALS, **subject.handler_environment(endpoint)}
    saved = {name: os.environ.get(name) for name in [*wanted, names.WRITERS]}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        settings.get_settings.cache_clear()
        lambda_services.base_services.cache_clear()


def _warm_services(writers: int) -> Any:
    """The services a warm ingest function with WRITERS=`writers` holds (built by the Lambda wiring)."""
    from functions.core.wiring import lambda_services, settings

    os.environ[names.WRITERS] = str(writers)
    settings.get_settings.cache_clear()
    lambda_services.base_services.cache_clear()
    return lambda_services.base_services()


def _invoke(services: Any, body: bytes, records: int, number: int, counter: WriteRequestCounter) -> Timing:
    """One invocation of the ingest use case on `services`; checks what it wrote and how."""
    from functions.core.domain.events import ObjectEvent
    from functions.core.use_cases.ingest import ingest_object

    invocation = replace(
        services,
        objects=subject.StreamReader(io.BytesIO(body)),
        reports=subject.MemoryReports(),
        invocation_id=f"scale-{number}",
    )
    event = ObjectEvent.from_eventbridge(
        object_created(
            bucket=BUCKET, key=KEY, size=len(body), etag="etag", sequencer=sequencer(number), version_id="v1"
        )
    )
    counter.reset()
    with Stopwatch() as watch:
        outcome = ingest_object(invocation, event)
    if outcome.records_written != records or outcome.records_rejected:
        raise RuntimeError(f"ingest did not write {records} records: {outcome}")
    return watch.timing


def _measure(config: BenchConfig, records: int) -> dict[int, list[Invocation]]:
    body = data.jsonl_bytes(records)
    warm_body = data.jsonl_bytes(BATCH_WRITE_LIMIT * 4)
    counter = WriteRequestCounter()
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    counter.attach(boto3.DEFAULT_SESSION.events)  # the wiring's clients come from the default session
    measured: dict[int, list[Invocation]] = {writers: [] for writers in WRITER_COUNTS}
    with LatencyEndpoint(LATENCY_MS / 1000) as endpoint, _lambda_environment(endpoint):
        functions = {writers: _warm_services(writers) for writers in WRITER_COUNTS}
        number = 0
        for services in functions.values():  # warm: connections open, threads started
            number += 1
            _invoke(services, warm_body, BATCH_WRITE_LIMIT * 4, number, counter)
        for _ in range(config.runs):
            for writers, services in functions.items():  # interleaved: a busy moment hits every size
                number += 1
                timing = _invoke(services, body, records, number, counter)
                batches = counter.by_operation["BatchWriteItem"]
                measured[writers].append(Invocation(writers, records, timing, batches))
    return measured


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _gb_seconds_per_million(invocations: list[Invocation], memory_mb: int) -> list[float]:
    """Per run: billed duration (rounded up to the millisecond: AWS News Blog, "New for AWS Lambda - 1ms
    Billing Granularity") x configured memory, per million records."""
    return [
        (memory_mb / 1024) * (math.ceil(run.timing.wall * 1000) / 1000) * 1_000_000 / run.records
        for run in invocations
    ]


def _newline_count_bytes_per_second() -> float:
    """How fast this machine counts the newlines of JSON Lines (the serial part before a fan-out)."""
    chunk = data.jsonl_bytes(50_000)
    started = time.perf_counter()
    for _ in range(20):
        chunk.count(b"\n")
    return 20 * len(chunk) / (time.perf_counter() - started)


def _projection(rate: float, cpu_per_record: float, bytes_per_record: float) -> dict[str, Any]:
    """Minutes for 25M records: one counting pass, then the ranges on `fanout_max_concurrency` range
    workers of `fanout_memory_mb` each (the default stage's settings), capped by the table's quota."""
    stage = load_config(_defaults_only)
    concurrency, threshold = stage.fanout_max_concurrency, stage.fanout_threshold_bytes
    memory_mb = stage.fanout_memory_mb
    cpu_bound_rate = (memory_mb / LAMBDA_MB_PER_VCPU) / cpu_per_record
    invocation_rate = min(rate, cpu_bound_rate)
    count_rate = min(ASSUMED_S3_READ_BYTES_PER_SECOND, _newline_count_bytes_per_second())
    object_bytes = PROJECTED_RECORDS * bytes_per_record
    records_per_range = threshold / bytes_per_record
    write_units_per_record = 1  # the benchmark's items are well under 1 KB
    table_rate = TABLE_WRITE_QUOTA_WRU / write_units_per_record
    serial_seconds = object_bytes / count_rate
    write_seconds = PROJECTED_RECORDS / min(concurrency * invocation_rate, table_rate)
    quota_seconds = PROJECTED_RECORDS / table_rate
    return {
        "minutes": round((serial_seconds + write_seconds) / 60, 2),
        "quota_minutes": round(quota_seconds / 60, 2),
        "ratio_to_quota": round((serial_seconds + write_seconds) / quota_seconds, 3),
        "formula": (
            "(records * bytes_per_record / newline_count_bytes_per_second"
            " + records / min(fanout_max_concurrency * min(records_per_second_per_invocation,"
            " lambda_cpu_bound_records_per_second), table_write_quota_wru / write_units_per_record)) / 60"
        ),
        "inputs": {
            "records": PROJECTED_RECORDS,
            "bytes_per_record": round(bytes_per_record, 1),
            "records_per_second_per_invocation": round(rate, 1),
            "lambda_cpu_bound_records_per_second": round(cpu_bound_rate, 1),
            "cpu_seconds_per_record_measured": cpu_per_record,
            "fanout_memory_mb": memory_mb,
            "lambda_mb_per_vcpu": LAMBDA_MB_PER_VCPU,
            "fanout_max_concurrency": concurrency,
            "fanout_threshold_bytes": threshold,
            "records_per_range": round(records_per_range),
            "ranges": math.ceil(PROJECTED_RECORDS / records_per_range),
            "seconds_per_range": round(records_per_range / invocation_rate, 1),
            "table_write_quota_wru": TABLE_WRITE_QUOTA_WRU,
            "write_units_per_record": write_units_per_record,
            "newline_count_bytes_per_second": round(count_rate),
            "serial_seconds": round(serial_seconds, 1),
            "write_seconds": round(write_seconds, 1),
            "assumptions": [
                "the rate of one invocation is what this machine measured under the latency model, capped by "
                "the CPU share of the range worker's memory (this machine's core counted as one Lambda vCPU)",
                "before the fan-out, one invocation reads the whole object once to count newlines, at "
                f"{ASSUMED_S3_READ_BYTES_PER_SECOND // 2**20} MiB/s (an assumption, not an AWS figure) or "
                "this machine's counting speed, whichever is lower; ranges are not written meanwhile",
                "every range runs at the per-invocation rate; SQS delivery, cold starts and the final "
                "commit are not counted",
                "the 64 shards of a large object's keys keep its writes under the 1,000 WCU/s per partition",
            ],
        },
    }


LARGE_OBJECT_THRESHOLD = 1024 * 1024  # the smallest fanout_threshold_bytes the stage settings allow
LARGE_OBJECT_RANGES = 9


def _large_object(config: BenchConfig) -> dict[str, Any] | None:
    """`large_object`: an object that fans out into >= 8 ranges in local mode (the stack synthesized with
    `-c eventpipe.dev.fanout_threshold_bytes=1048576`), against the same records ingested in one
    invocation: the same lines gzip-compressed (`.jsonl.gz` never fans out), in the same emulator."""
    if config.scale < 1:
        return None  # >= 8 ranges of at least 1 MiB each cannot shrink: a full run only
    import gzip

    from boto3.dynamodb.types import TypeDeserializer

    from eventpipe.local.deploy import parse_context
    from eventpipe.local.emulator import Emulator  # local mode is optional for the other benchmarks
    from eventpipe.ops.object_records import Span, position_items

    pad = "x" * 400
    count = (LARGE_OBJECT_RANGES * LARGE_OBJECT_THRESHOLD) // (len(pad) + 30) + 1
    body = "".join(json.dumps({"n": n, "pad": pad}) + "\n" for n in range(1, count + 1)).encode()
    ranges = math.ceil(len(body) / LARGE_OBJECT_THRESHOLD)
    context = parse_context([f"eventpipe.dev.fanout_threshold_bytes={LARGE_OBJECT_THRESHOLD}"], "dev")
    deserialize = TypeDeserializer().deserialize
    walls, tables = {}, {}
    with Emulator.start(
        port=0, state_dir=config.work_dir / "large-object-state", context=context
    ) as emulator:
        bucket, table = emulator.outputs["BucketName"], emulator.outputs["TableName"]
        s3, dynamodb = emulator.client("s3"), emulator.client("dynamodb")
        for key, data in (("data/large.jsonl", body), ("data/large.jsonl.gz", gzip.compress(body))):
            started = time.perf_counter()
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            emulator.wait_idle(timeout=3600)
            walls[key] = time.perf_counter() - started
            items = position_items(dynamodb, table, key, owner=f"{bucket}/{key}", span=Span.everything())
            tables[key] = {item["sk"]["S"]: deserialize(item["data"]) for item in items}
    fanned, single = tables["data/large.jsonl"], tables["data/large.jsonl.gz"]
    return {
        "records_expected": count,
        "records_found": len(fanned),
        "ranges": ranges,
        "object_bytes": len(body),
        "fanout_threshold_bytes": LARGE_OBJECT_THRESHOLD,
        "wall_seconds": round(walls["data/large.jsonl"], 2),
        "single_invocation_wall_seconds": round(walls["data/large.jsonl.gz"], 2),
        "tables_identical": fanned == single,
        "comparison": (
            "upload to idle in one local-mode emulator (a single process on this machine: the range "
            "workers share its cores, so the fan-out shows correctness here, not speed); the single "
            "invocation is the same lines as .jsonl.gz, which never fans out; tables compared record "
            "by record (position and data)"
        ),
    }


def run(config: BenchConfig) -> ScaleResult:
    records = config.scaled(RECORDS, 500)
    memory_mb = ingest_memory_mb()
    result = ScaleResult("scale", "6 scale (15 ms per DynamoDB request)")
    measured = _measure(config, records)
    rates = {writers: [run.rate for run in runs] for writers, runs in measured.items()}
    for writers, samples in rates.items():
        result.add(f"records/s, {writers} writer{'s' if writers > 1 else ''}", "records/s", samples)
    pool, sequential = measured[DEFAULT_WRITERS], measured[1]
    pool_rate = _median(rates[DEFAULT_WRITERS])
    cpu_per_record = _median([run.timing.cpu / run.records for run in pool])
    result.add("process CPU per record, default pool", "s", [run.timing.cpu / run.records for run in pool])
    gb_sequential_runs = _gb_seconds_per_million(sequential, memory_mb)
    gb_pool_runs = _gb_seconds_per_million(pool, memory_mb)
    gb_sequential, gb_pool = _median(gb_sequential_runs), _median(gb_pool_runs)
    expected_batches = math.ceil(records / BATCH_WRITE_LIMIT)
    all_exact = all(run.batch_writes == expected_batches for runs in measured.values() for run in runs)
    bytes_per_record = len(data.jsonl_bytes(1000)) / 1000

    result.section = {
        "latency_model": {
            "per_request_ms": LATENCY_MS,
            "description": (
                f"every DynamoDB request (BatchWriteItem, UpdateItem, GetItem, ...) answered after "
                f"{LATENCY_MS} ms by a local HTTP endpoint in a separate process (127.0.0.1, HTTP/1.1 "
                "keep-alive), with the smallest valid answer (nothing unprocessed, no throttling); the "
                "object is read from memory (no S3 latency); the client is the Lambda wiring's botocore "
                "client; CPU is this machine's (shared, 2 cores), not a Lambda's share of a vCPU"
            ),
        },
        "records_per_second_by_writers": {str(w): round(_median(r), 1) for w, r in rates.items()},
        "lambda_gb_seconds_per_million_records": {
            "memory_mb": memory_mb,
            "sequential": round(gb_sequential, 3),
            "pool": round(gb_pool, 3),
            "writers": DEFAULT_WRITERS,
        },
        "large_object": _large_object(config),
        "projected_minutes_for_25M_records": _projection(pool_rate, cpu_per_record, bytes_per_record),
    }
    result.inputs = {
        "records": records,
        "runs": config.runs,
        "writers": list(WRITER_COUNTS),
        "latency_ms": LATENCY_MS,
        "memory_mb": memory_mb,
        "subject": "functions.core.use_cases.ingest.ingest_object with lambda_services.base_services()",
    }
    result.add("Lambda GB-s per million records, 1 writer", "GB-s", gb_sequential_runs)
    result.add(f"Lambda GB-s per million records, {DEFAULT_WRITERS} writers", "GB-s", gb_pool_runs)
    result.goal(
        f"one invocation >= 10,000 records/s at {LATENCY_MS} ms (default pool)",
        pool_rate,
        pool_rate >= 10_000,
    )
    ratio = gb_sequential / gb_pool
    result.goal("Lambda GB-s per million records >= 5x lower than one writer", ratio, ratio >= 5)
    result.goal(
        f"exactly ceil(records / 25) = {expected_batches} BatchWriteItem per invocation, every pool size",
        float(expected_batches),
        all_exact,
    )
    projected = result.section["projected_minutes_for_25M_records"]
    result.goal(
        f"25M records projected within {PROJECTION_GOAL_RATIO:g}x of the table quota's "
        f"{projected['quota_minutes']} min",
        projected["ratio_to_quota"],
        projected["ratio_to_quota"] <= PROJECTION_GOAL_RATIO,
    )
    result.notes.append(
        f"projected {projected['minutes']} min for 25M records: {projected['formula']}; "
        f"inputs {json.dumps({k: v for k, v in projected['inputs'].items() if k != 'assumptions'})}"
    )
    large = result.section["large_object"]
    if large is None:
        result.notes.append(
            "large_object: measured by full runs only (>= 8 ranges of >= 1 MiB in local mode)"
        )
    else:
        result.goal(
            f"local mode: an object fanned out into {large['ranges']} ranges lands complete and identical "
            "to the single-invocation result",
            float(large["records_found"]),
            large["records_found"] == large["records_expected"] and large["tables_identical"],
        )
    return result


def write_section(path: Path, results: list[BenchResult]) -> None:
    """Add the `scale` section to the results.json that `report.write_json` wrote (when it ran)."""
    scale = next((r for r in results if isinstance(r, ScaleResult) and r.section), None)
    if scale is None:
        return
    document = json.loads(path.read_text(encoding="utf-8"))
    document["scale"] = scale.section
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
