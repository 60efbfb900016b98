"""The range worker's use case: ingest one range of a fan-out (fan_out.py), and commit the object once
every range is done.

Under the fan-out's lease (the task's token): renew it, stop if a newer event waits (the lease goes back
dirty; the newer event redoes the object), write the lines that start in the range with their global
positions, keep the range's rejects in a part object, record the range as done. The worker that finds
every range done claims the finalization: it merges the parts into the one report, removes what older
versions left and commits, like a single-invocation ingest would (mirror_object.finish_version).
A task whose token no longer holds the object is dropped: another attempt owns the object now.
A failing range keeps the lease (it is not released): SQS delivers the task again, then to the DLQ;
redriving it finishes the object as long as no other event took the object over meanwhile.
"""

from __future__ import annotations

import json

from functions.core.domain.byte_ranges import LineRange
from functions.core.domain.object_state import ObjectState, RangeSummary
from functions.core.domain.object_versions import UnreadableVersionError
from functions.core.domain.range_task import RangeTask
from functions.core.domain.reasons import Reason
from functions.core.domain.records import ItemBuilder, Provenance
from functions.core.domain.rejects_report import MAX_ENTRIES, RejectsReport
from functions.core.use_cases.fan_out import continue_elsewhere
from functions.core.use_cases.mirror_object import VersionResult, finish_version, write_version
from functions.core.use_cases.object_lease import Lease, OutOfTime, Superseded
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import Services
from functions.core.use_cases.version_writer import VersionWriter


def ingest_range(services: Services, task: RangeTask) -> Outcome:
    event, store = task.event, services.store
    state = store.renew_fanout(
        event.owner, task.token, lease_expires=services.clock() + services.lease.lease_seconds
    )
    if state is None:
        return _dropped(task)
    if state.is_newer_than(event.sequencer):
        store.release(event.owner, task.token, dirty=True)
        return Outcome(Status.SUPERSEDED, event.owner, detail="a newer event took over the fan-out")
    if task.continuation:
        return _continue(services, task, Lease(token=task.token, prior=state))
    if not any(done.index == task.byte_range.index for done in state.fanout_done):
        try:
            summary = _write_range(services, task)
        except Superseded:
            store.release(event.owner, task.token, dirty=True)
            return Outcome(Status.SUPERSEDED, event.owner, detail="a newer event took over the fan-out")
        if summary is None:
            store.release(event.owner, task.token, dirty=True)
            return Outcome(Status.STALE, event.owner, detail="the announced object version no longer exists")
        after = store.range_done(event.owner, task.token, summary)
        if after is None:
            return _dropped(task)
        state = after
    else:
        summary = next(done for done in state.fanout_done if done.index == task.byte_range.index)
    if len(state.fanout_done) < task.ranges or not store.claim_finalize(
        event.owner, task.token, task.byte_range.index
    ):
        return Outcome(
            Status.RANGE_WRITTEN,
            event.owner,
            records_written=summary.written,
            records_rejected=summary.rejected,
            write_requests=summary.requests,
            detail=f"range {task.byte_range.index + 1} of {task.ranges}",
        )
    return _finalize(services, task, state, summary)


def _continue(services: Services, task: RangeTask, lease: Lease) -> Outcome:
    """Resume a whole-object ingest from its checkpoint (the state item `lease.prior` holds it), and
    hand over again if this invocation runs out of time too."""
    event = task.event
    dataset = services.datasets.for_key(event.key)
    try:
        stream = services.objects.open(event.bucket, event.key, version_id=event.version_id, etag=event.etag)
    except UnreadableVersionError as unreadable:
        return write_version(services, event, lease, dataset, unreadable)
    if stream is None:
        services.store.release(event.owner, task.token, dirty=True)
        return Outcome(Status.STALE, event.owner, detail="the announced object version no longer exists")
    try:
        return write_version(services, event, lease, dataset, stream)
    except Superseded:
        services.store.release(event.owner, task.token, dirty=True)
        return Outcome(Status.SUPERSEDED, event.owner, detail="a newer event took over")
    except OutOfTime as stopped:
        return continue_elsewhere(services, event, lease, dataset, stopped)


def _write_range(services: Services, task: RangeTask) -> RangeSummary | None:
    event, byte_range = task.event, task.byte_range
    dataset = services.datasets.for_key(event.key)
    builder = ItemBuilder(
        dataset,
        Provenance(
            bucket=event.bucket,
            key=event.key,
            sequencer=event.sequencer,
            event_id=event.event_id,
            ingested_at=task.ingested_at,
            version_id=event.version_id,
            etag=event.etag,
            replay_name=event.replay_name,
        ),
    )
    body = services.objects.open_range(
        event.bucket,
        event.key,
        version_id=event.version_id,
        etag=event.etag,
        start=byte_range.read_from,
        end=None,
    )
    if body is None:
        return None
    writer = VersionWriter(services, event, builder, stale_up_to=task.stale_up_to)
    with LineRange(body, byte_range) as lines:
        writer.write_records(
            lines,  # type: ignore[arg-type]  # a RawIOBase is a binary stream
            position_offset=task.newlines_before,
            skip_first=byte_range.skips_first_line,
            whole=False,
        )
    report = writer.report
    if report.total:
        services.reports.put(
            task.part_key, json.dumps({"total": report.total, "entries": report.entries}).encode("utf-8")
        )
    return RangeSummary(
        index=byte_range.index,
        written=writer.written,
        rejected=report.total,
        last_position=writer.last_position,
        saw_record=writer.saw_record,
        requests=writer.requests,
    )


def _finalize(services: Services, task: RangeTask, state: ObjectState, own: RangeSummary) -> Outcome:
    event = task.event
    summaries = sorted(state.fanout_done)
    report = RejectsReport()
    for summary in summaries:
        if summary.rejected:
            _merge_part(services, task.part_key_of(summary.index), report)
    if not any(summary.saw_record for summary in summaries):
        report.add(0, Reason.EMPTY_OBJECT, "the object holds no records")
    outcome = finish_version(
        services,
        event,
        Lease(token=task.token, prior=task.prior),
        services.datasets.for_key(event.key),
        VersionResult(
            written=sum(summary.written for summary in summaries),
            last_position=max(summary.last_position for summary in summaries),
            report=report,
            requests=sum(summary.requests for summary in summaries),
            committed_at=task.ingested_at,
        ),
        status=Status.INGESTED,
    )
    for summary in summaries:
        if summary.rejected:
            services.reports.delete(task.part_key_of(summary.index))
    # The outcome counts this range's records (each range's worker counts its own, so the metrics add
    # up to the object's); the detail gives the object's totals.
    outcome.detail = (
        f"range {task.byte_range.index + 1} of {task.ranges}, the last: object committed with "
        f"{outcome.records_written} records, {outcome.records_rejected} rejected"
    )
    outcome.records_written, outcome.write_requests = own.written, own.requests
    outcome.records_rejected = own.rejected
    return outcome


def _merge_part(services: Services, key: str, report: RejectsReport) -> None:
    body = services.reports.get(key)
    if body is None:
        # Written before the range was marked done: missing means someone removed it. Say so in the
        # report rather than commit a count the entries do not match.
        report.add(0, Reason.UNREADABLE_OBJECT, f"rejects of one range were lost ({key})")
        return
    part = json.loads(body)
    room = MAX_ENTRIES - len(report.entries)
    report.entries.extend(part["entries"][: max(room, 0)])
    report.total += int(part["total"])


def _dropped(task: RangeTask) -> Outcome:
    return Outcome(
        Status.STALE,
        task.event.owner,
        detail=f"range {task.byte_range.index + 1} of {task.ranges}: the fan-out no longer holds the object",
    )
