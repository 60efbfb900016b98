"""Fan-out: an object too large for one invocation is split into byte ranges that range workers ingest
in parallel (range_ingest.py), through the range work queue (SQS + the range worker's event source
mapping with bounded concurrency: the distributed engine is Lambda's, not ours).

The coordinator (this module, called by ingest under the object's lease) numbers the ranges' lines by
counting the newlines before each range (ranged GETs in parallel), records the fan-out in the state item
and sends one task per range. The lease stays with the fan-out: workers renew it, a newer event makes
them stop, and only the worker that completes the last range commits, once (docs/data-model.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Final

from functions.core.domain.datasets import Dataset
from functions.core.domain.events import ObjectEvent
from functions.core.domain.formats import Format, detect_format
from functions.core.use_cases.object_lease import Lease, OutOfTime, release_unchanged
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import Services

_COUNT_CHUNK: Final = 1024 * 1024


def should_fan_out(services: Services, event: ObjectEvent, dataset: Dataset) -> bool:
    """Uncompressed JSON Lines of a position-keyed dataset above the threshold, when a queue exists.
    (gzip cannot be split without reading it whole; a `.json` array cannot be split by bytes; natural
    keys need one writer to decide which duplicate wins: those are ingested, and resumed, in one place.)"""
    policy = services.fanout
    fmt = detect_format(event.key)
    return (
        policy.queue is not None
        and event.size is not None
        and event.size > policy.threshold_bytes
        and fmt is not None
        and fmt.kind is Format.JSON_LINES
        and not fmt.gzip
        and not dataset.has_natural_key
    )


def fan_out(services: Services, event: ObjectEvent, lease: Lease, dataset: Dataset) -> Outcome:
    """Split the object into ranges and send them to the range workers (the lease goes with them)."""
    # Deferred (here and below): a small object's ingest, every cold start's, never builds range tasks.
    from functions.core.domain.byte_ranges import count_segments, newlines_before, plan
    from functions.core.domain.range_task import RangeTask

    assert event.size is not None
    assert services.fanout.queue is not None
    ranges = plan(event.size, services.fanout.threshold_bytes)
    counts = _count_newlines(services, event, count_segments(ranges))
    if counts is None:
        release_unchanged(services, event.owner, lease)
        return Outcome(Status.STALE, event.owner, detail="the announced object version no longer exists")
    before = newlines_before(counts)
    ingested_at = services.timestamp()
    tasks = [
        RangeTask(
            event=event,
            token=lease.token,
            prior=lease.prior,
            dataset=dataset.name,
            ingested_at=ingested_at,
            ranges=len(ranges),
            byte_range=byte_range,
            newlines_before=before[byte_range.index],
        ).to_json()
        for byte_range in ranges
    ]
    _hand_over(services, event, lease, ranges=len(ranges))
    services.fanout.queue.send(tasks)
    return Outcome(
        Status.FANNED_OUT,
        event.owner,
        detail=f"{len(ranges)} ranges of {services.fanout.threshold_bytes} bytes sent to the range workers",
    )


def continue_elsewhere(
    services: Services, event: ObjectEvent, lease: Lease, dataset: Dataset, stopped: OutOfTime
) -> Outcome:
    """Hand an ingest that checkpointed before its invocation ended to the range worker: a fan-out
    of one task that resumes the whole object from the checkpoint under the same lease. A delete that
    runs out of time is handed over the same way (delete_sync.apply_delete)."""
    from functions.core.domain.byte_ranges import ByteRange
    from functions.core.domain.range_task import RangeTask

    assert services.fanout.queue is not None  # hand_over_at is only set with a queue
    task = RangeTask(
        event=event,
        token=lease.token,
        prior=lease.prior,
        dataset=dataset.name,
        ingested_at=services.timestamp(),
        ranges=1,
        byte_range=ByteRange(0, 0, event.size or 0),
        newlines_before=0,
        continuation=True,
    )
    _hand_over(services, event, lease, ranges=1)
    services.fanout.queue.send([task.to_json()])
    return Outcome(
        Status.CONTINUED,
        event.owner,
        items_removed=stopped.removed,
        detail=f"{stopped}; a continuation resumes from there",
    )


def _hand_over(services: Services, event: ObjectEvent, lease: Lease, *, ranges: int) -> None:
    """Record the fan-out under the lease. The event also announces itself (as a waiting newer event
    does): once this invocation returns, nothing retries the event, so an older event must never take
    the object over, even after the lease expires with tasks still waiting in the queue."""
    services.store.announce(event.owner, event.sequencer)
    services.store.start_fanout(
        event.owner, lease.token, ranges=ranges, lease_expires=services.clock() + services.lease.lease_seconds
    )


def _count_newlines(
    services: Services, event: ObjectEvent, segments: list[tuple[int, int]]
) -> list[int] | None:
    """Newlines in each `[start, end)` segment, read in parallel; None if the version is gone."""

    def count(segment: tuple[int, int]) -> int | None:
        start, end = segment
        body = services.objects.open_range(
            event.bucket, event.key, version_id=event.version_id, etag=event.etag, start=start, end=end - 1
        )
        if body is None:
            return None
        total = 0
        with body:
            while chunk := body.read(_COUNT_CHUNK):
                total += chunk.count(b"\n")
        return total

    if not segments:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(services.writers, len(segments)))) as pool:
        counts = list(pool.map(count, segments))
    if any(found is None for found in counts):
        return None
    return [found for found in counts if found is not None]
