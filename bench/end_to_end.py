"""Benchmark 5 — end to end: a burst of objects uploaded to local mode, timed until each item is visible.

Local mode (`eventpipe.local.emulator.Emulator`) runs the synthesized stack: S3 -> default bus ->
forwarder -> project bus -> ingest rule -> the ingest Lambda in a local worker -> DynamoDB. Objects are
uploaded by 8 threads as fast as the emulator accepts them; the table is scanned in a loop and each
object's latency is PutObject returned -> first scan that shows its record, so latencies carry the
scan interval as resolution (reported).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.config import BenchConfig
from bench.results import BenchResult
from bench.stats import percentile

UPLOAD_THREADS = 8
# Scans run inside the emulator process too: pausing between them keeps the probe from slowing the
# pipeline it measures (resolution stays far below the latencies of a burst)
POLL_PAUSE_SECONDS = 0.25
WARM_UP_PAUSE_SECONDS = 0.05  # one object only: a finer resolution costs nothing
WARM_UP_TIMEOUT_SECONDS = 120


def _scan_owners(dynamodb: Any, table: str) -> set[str]:
    owners: set[str] = set()
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table, ProjectionExpression="#owner", ExpressionAttributeNames={"#owner": "owner"}
    ):
        owners.update(item["owner"]["S"] for item in page["Items"] if "owner" in item)
    return owners


def _queue_depth(sqs: Any, url: str | None) -> int | None:
    if not url:
        return None
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def run(config: BenchConfig) -> BenchResult:
    from eventpipe.local.emulator import Emulator  # local mode is optional for the other benchmarks

    objects = config.end_to_end_objects
    result = BenchResult("end_to_end", "5 end to end (local mode)")
    state_dir = config.work_dir / "local-state"
    started_emulator = time.perf_counter()
    with Emulator.start(port=0, state_dir=state_dir) as emulator:
        startup_s = time.perf_counter() - started_emulator
        bucket, table = emulator.outputs["BucketName"], emulator.outputs["TableName"]
        s3, dynamodb, sqs = emulator.client("s3"), emulator.client("dynamodb"), emulator.client("sqs")
        result.inputs = {
            "objects": objects,
            "object": "one tutorial-shaped .json record each (default dataset)",
            "upload": f"{UPLOAD_THREADS} threads, as fast as PutObject returns",
            "latency": "PutObject returned -> record visible in a table scan",
            "emulator": "eventpipe.local (moto server + event engine + local Lambda workers), one process",
        }

        def put(index: int) -> tuple[str, float]:
            key = f"bench/e2e/person {index:05d}.json"  # a space, so keys arrive URL-encoded
            body = json.dumps(
                {"Name": f"Person {index}", "Role": "Developer", "Email": f"p{index}@example.com"}
            )
            s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
            return f"{bucket}/{key}", time.perf_counter()

        # One object first, so the cold start of the Lambda worker is reported, not mixed into the burst.
        warm_owner, warm_put = put(objects)
        while warm_owner not in _scan_owners(dynamodb, table):
            if time.perf_counter() - warm_put > WARM_UP_TIMEOUT_SECONDS:
                raise RuntimeError(f"the first object was not ingested within {WARM_UP_TIMEOUT_SECONDS} s")
            time.sleep(WARM_UP_PAUSE_SECONDS)
        cold_s = time.perf_counter() - warm_put

        burst_started = time.perf_counter()
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            put_done = dict(pool.map(put, range(objects)))
        upload_s = time.perf_counter() - burst_started

        visible_at: dict[str, float] = {}
        scan_times: list[float] = []
        deadline = time.perf_counter() + 120 + objects
        while len(visible_at) < objects and time.perf_counter() < deadline:
            scan_started = time.perf_counter()
            owners = _scan_owners(dynamodb, table)
            seen = time.perf_counter()
            scan_times.append(seen - scan_started)
            for owner in owners.intersection(put_done).difference(visible_at):
                visible_at[owner] = seen
            time.sleep(POLL_PAUSE_SECONDS)
        emulator.wait_idle(timeout=60)
        failures = {
            name: _queue_depth(sqs, emulator.outputs.get(name))
            for name in ("IngestFailureQueueUrl", "IngestDlqUrl")
        }

    latencies_ms = [1000 * (visible_at[owner] - put_done[owner]) for owner in visible_at]
    ingested = len(visible_at)
    result.add("objects ingested", "objects", [ingested])
    if latencies_ms:
        all_visible_s = max(visible_at.values()) - burst_started
        result.add("throughput (burst start -> last visible)", "objects/s", [ingested / all_visible_s])
        result.add("latency per object (median = p50; runs = objects)", "ms", latencies_ms)
        result.add("latency p95", "ms", [percentile(latencies_ms, 95)])
        result.add("latency max", "ms", [max(latencies_ms)])
    result.add("first object (cold Lambda worker)", "ms", [1000 * cold_s])
    result.goal(f"all {objects} objects ingested", ingested, ingested == objects)
    result.notes.append(
        f"emulator start {startup_s:.1f} s; burst upload {upload_s:.1f} s "
        f"({objects / upload_s:.0f} PutObject/s); scan resolution median "
        f"{1000 * sorted(scan_times)[len(scan_times) // 2] if scan_times else 0:.0f} ms + "
        f"{1000 * POLL_PAUSE_SECONDS:.0f} ms pause; messages in failure queues after: {failures}"
    )
    return result
