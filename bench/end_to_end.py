"""Benchmark 5 — end to end: a burst of objects uploaded to local mode, timed until each item is visible.

Local mode (`eventpipe.local.emulator.Emulator`) runs the synthesized stack: S3 -> default bus ->
forwarder -> project bus -> ingest rule -> the ingest Lambda in a local worker -> DynamoDB. Objects are
uploaded by 8 threads as fast as the emulator accepts them; the records not seen yet are read back in a
loop (BatchGetItem of their keys) and each object's latency is PutObject returned -> first read that
returns its record, so latencies carry the probe interval as resolution (reported).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.config import BenchConfig
from bench.results import BenchResult
from bench.stats import percentile
from functions.core.domain.table_layout import record_key

UPLOAD_THREADS = 8
# The probe's reads are served by the emulator process too: pausing between them, and reading only the
# records not seen yet (not scanning the whole table, which costs the emulator a copy of every item),
# keeps the probe from slowing the pipeline it measures. Resolution stays far below a burst's latencies.
POLL_PAUSE_SECONDS = 0.25
BATCH_GET_LIMIT = 100  # keys per BatchGetItem (the API's limit)
WARM_UP_PAUSE_SECONDS = 0.05  # one object only: a finer resolution costs nothing
WARM_UP_TIMEOUT_SECONDS = 120


def _visible_keys(dynamodb: Any, table: str, keys: list[str]) -> set[str]:
    """The object keys among `keys` whose (single, position 1) record is in the table now, read at the
    key the write path gives it (table_layout.record_key: shard 00 of the object)."""
    found: set[str] = set()
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        batch = {record_key(key, 1)["pk"]["S"]: key for key in keys[start : start + BATCH_GET_LIMIT]}
        pending: dict[str, Any] = {
            table: {"Keys": [record_key(key, 1) for key in batch.values()], "ProjectionExpression": "pk"}
        }
        while pending:
            response = dynamodb.batch_get_item(RequestItems=pending)
            found.update(batch[item["pk"]["S"]] for item in response["Responses"].get(table, []))
            pending = response.get("UnprocessedKeys") or {}
    return found


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
            "latency": "PutObject returned -> record returned by a BatchGetItem of the pending keys",
            "emulator": "eventpipe.local (moto server + event engine + local Lambda workers), one process",
        }

        def put(index: int) -> tuple[str, float]:
            key = f"bench/e2e/person {index:05d}.json"  # a space, so keys arrive URL-encoded
            body = json.dumps(
                {"Name": f"Person {index}", "Role": "Developer", "Email": f"p{index}@example.com"}
            )
            s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
            return key, time.perf_counter()

        # One object first, so the cold start of the Lambda worker is reported, not mixed into the burst.
        warm_key, warm_put = put(objects)
        while not _visible_keys(dynamodb, table, [warm_key]):
            if time.perf_counter() - warm_put > WARM_UP_TIMEOUT_SECONDS:
                raise RuntimeError(f"the first object was not ingested within {WARM_UP_TIMEOUT_SECONDS} s")
            time.sleep(WARM_UP_PAUSE_SECONDS)
        cold_s = time.perf_counter() - warm_put

        put_done: dict[str, float] = {}
        visible_at: dict[str, float] = {}
        probe_times: list[float] = []
        burst_started = time.perf_counter()
        deadline = burst_started + 120 + objects
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            uploads = [pool.submit(put, index) for index in range(objects)]
            # The probe runs during the upload too: an object ingested while others are still being
            # uploaded is seen then, not only once the whole burst is in.
            while len(visible_at) < objects and time.perf_counter() < deadline:
                put_done.update(upload.result() for upload in uploads if upload.done())
                probe_started = time.perf_counter()
                found = _visible_keys(dynamodb, table, [key for key in put_done if key not in visible_at])
                seen = time.perf_counter()
                probe_times.append(seen - probe_started)
                for key in found:
                    visible_at[key] = seen
                time.sleep(POLL_PAUSE_SECONDS)
        put_done.update(upload.result() for upload in uploads)
        upload_s = max(put_done.values()) - burst_started
        emulator.wait_idle(timeout=60)
        failures = {
            name: _queue_depth(sqs, emulator.outputs.get(name))
            for name in ("IngestFailureQueueUrl", "IngestDlqUrl")
        }

    latencies_ms = [1000 * (visible_at[key] - put_done[key]) for key in visible_at]
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
        f"({objects / upload_s:.0f} PutObject/s); probe resolution median "
        f"{1000 * sorted(probe_times)[len(probe_times) // 2] if probe_times else 0:.0f} ms + "
        f"{1000 * POLL_PAUSE_SECONDS:.0f} ms pause; messages in failure queues after: {failures}"
    )
    return result
