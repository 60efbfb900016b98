"""The range worker's use case: ingest one range of a fan-out (fan_out.py), and commit the object once
every range is done.

Under the fan-out's lease (the task's token) a worker registers as writing (until its invocation's
deadline, which the lease is extended to cover), writes the lines that start in its range with their
global positions, keeps the range's rejects in a part object, and leaves, recording its range as done.
Nothing takes the object over or commits while another registered worker may still write: a worker
that learns of a newer event stops and leaves, and the last one to leave gives the lease back; the
worker that leaves last with every range done claims the commit, merges the parts into the one report,
removes what older versions left and commits as the sole writer (mirror_object.finish_version).
A task whose token no longer holds the object is dropped: another attempt owns the object now.
A continuation (a one-task fan-out, fan_out.continue_elsewhere) goes on with a whole-object ingest or a
delete that ran out of invocation time, and hands over again if it runs out too.
A failing worker closes its writers and leaves at once; one that dies silently (killed, timed out) stays
registered until its deadline (it may still be writing). SQS delivers a failed task again, then to the
DLQ; redriving it finishes the object as long as no other event took it over.
"""

from __future__ import annotations

import json
import uuid

from functions.core.domain.byte_ranges import LineRange
from functions.core.domain.object_state import (
    ObjectState,
    OthersWritingError,
    RangeSummary,
    TransientStoreError,
)
from functions.core.domain.object_versions import UnreadableVersionError
from functions.core.domain.range_task import RangeTask
from functions.core.domain.reasons import Reason
from functions.core.domain.records import ItemBuilder, Provenance
from functions.core.domain.rejects_report import MAX_ENTRIES, RejectsReport
from functions.core.use_cases.delete_sync import apply_delete
from functions.core.use_cases.fan_out import continue_elsewhere
from functions.core.use_cases.mirror_object import VersionResult, finish_version, write_version
from functions.core.use_cases.object_lease import Lease, OutOfTime, Superseded
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import Services
from functions.core.use_cases.version_writer import VersionWriter


class FanoutPendingError(TransientStoreError):
    """The fan-out is complete but cannot commit yet (another worker may still write): retry later."""


def ingest_range(services: Services, task: RangeTask) -> Outcome:
    return _Worker(services, task).run()


class _Worker:
    def __init__(self, services: Services, task: RangeTask) -> None:
        self.services, self.task, self.store = services, task, services.store
        self.event = task.event
        self.index = task.byte_range.index
        # One registration per attempt: two deliveries of one task are two writers.
        self.writer = f"{services.invocation_id or 'local'}/{uuid.uuid4().hex[:12]}"
        self.deadline = services.clock() + services.lease.lease_seconds
        self._claimed = False  # this attempt holds the fan-out's commit claim

    def run(self) -> Outcome:
        try:
            return self._run()
        except BaseException:
            # An attempt that fails (and is still alive to say so) has nothing in flight any more (its
            # writers close on failure): it leaves at once, so the others need not wait for its
            # deadline. One that dies silently (a timeout) stays registered until its deadline.
            try:
                self.store.leave_fanout(
                    self.event.owner, self.task.token, self.writer, drop_claim=self._claimed
                )
            except Exception as leave_error:  # the original failure matters more
                _log_leave_failure(leave_error)
            raise

    def _run(self) -> Outcome:
        state = self.store.join_fanout(
            self.event.owner, self.task.token, self.writer, index=self.index, deadline=self.deadline
        )
        if state is None:
            return self._dropped()
        if state.is_newer_than(self.event.sequencer):
            return self._abandon(state)
        if state.fanout_finalizer == self.index:
            self._claimed = True
            return self._finalize(state)  # this range's earlier attempt claimed the commit, then failed
        if self.task.continuation:
            return self._continue(state)
        done = next((summary for summary in state.fanout_done if summary.index == self.index), None)
        if done is None:
            try:
                done = self._write_range()
            except Superseded:
                return self._abandon(state)
            if done is None:  # the version is gone: a newer event tells what the key holds now
                return self._abandon(state)
            left = self.store.leave_fanout(self.event.owner, self.task.token, self.writer, done=done)
        else:
            left = self.store.leave_fanout(self.event.owner, self.task.token, self.writer)
        if left is None:
            return self._dropped()
        return self._after_leaving(left, done)

    # --- leaving: the last writer out commits, or gives the lease back to a newer event -------------
    def _after_leaving(self, state: ObjectState, own: RangeSummary) -> Outcome:
        now = self.services.clock()
        active, gone = state.other_writers(self.writer, now)
        if state.is_newer_than(self.event.sequencer):
            if not active:
                self.store.abandon_fanout(self.event.owner, self.task.token, None, gone=gone)
            return Outcome(Status.SUPERSEDED, self.event.owner, detail="a newer event takes over the fan-out")
        written = Outcome(
            Status.RANGE_WRITTEN,
            self.event.owner,
            records_written=own.written,
            records_rejected=own.rejected,
            write_requests=own.requests,
            detail=f"range {self.index + 1} of {self.task.ranges}",
        )
        if len(state.fanout_done) < self.task.ranges or state.fanout_finalizer is not None:
            return written
        if active:
            # Every range is done, yet another attempt is registered: a second delivery of a task, or
            # a worker that died while registered. If it is alive it commits when it leaves; if not,
            # only a retry after its deadline can: fail this task so SQS delivers it again later.
            raise FanoutPendingError(
                f"{self.event.owner}: every range is written but {len(active)} other worker(s) may still "
                "be writing; the fan-out commits when the last one leaves (retried later)"
            )
        if not self.store.claim_finalize(
            self.event.owner,
            self.task.token,
            self.writer,
            index=self.index,
            ranges=self.task.ranges,
            deadline=self.deadline,
            gone=gone,
        ):
            return written
        self._claimed = True
        return self._finalize(state, own)

    def _abandon(self, state: ObjectState) -> Outcome:
        _, gone = state.other_writers(self.writer, self.services.clock())
        self.store.abandon_fanout(self.event.owner, self.task.token, self.writer, gone=gone)
        return Outcome(Status.SUPERSEDED, self.event.owner, detail="a newer event takes over the fan-out")

    def _dropped(self) -> Outcome:
        return Outcome(
            Status.STALE,
            self.event.owner,
            detail=f"range {self.index + 1} of {self.task.ranges}: the fan-out no longer holds the object",
        )

    # --- writing -------------------------------------------------------------------------------------
    def _write_range(self) -> RangeSummary | None:
        services, task, event, byte_range = self.services, self.task, self.event, self.task.byte_range
        builder = ItemBuilder(
            services.datasets.for_key(event.key),
            Provenance.of_event(event, task.ingested_at),
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
        writer = _range_writer(services, task, builder)
        with LineRange(body, byte_range) as lines:
            writer.write_records(
                lines,  # type: ignore[arg-type]  # a RawIOBase is a binary stream
                position_offset=task.newlines_before,
                skip_first=byte_range.skips_first_line,
                whole=False,
            )
        report = writer.report
        if report.total:
            part = {"total": report.total, "entries": report.entries}
            services.reports.put(task.part_key, json.dumps(part).encode("utf-8"))
        return RangeSummary(
            index=byte_range.index,
            written=writer.written,
            rejected=report.total,
            last_position=writer.last_position,
            saw_record=writer.saw_record,
            requests=writer.requests,
        )

    def _continue(self, state: ObjectState) -> Outcome:
        """Resume a whole-object ingest from its checkpoint (held in `state`), or a delete from what is
        left (delete_sync.apply_delete), and hand over again if this invocation runs out of time too."""
        services, event = self.services, self.event
        lease = Lease(token=self.task.token, prior=state, writer=self.writer)
        dataset = services.datasets.for_key(event.key)
        try:
            if event.is_deleted:
                return apply_delete(services, event, lease, dataset)
            try:
                stream = services.objects.open(
                    event.bucket, event.key, version_id=event.version_id, etag=event.etag
                )
            except UnreadableVersionError as unreadable:
                return write_version(services, event, lease, dataset, unreadable)
            if stream is None:
                return self._abandon(state)
            return write_version(services, event, lease, dataset, stream)
        except Superseded:
            return self._abandon(state)
        except OutOfTime as stopped:
            outcome = continue_elsewhere(services, event, lease, dataset, stopped)
            self.store.leave_fanout(event.owner, self.task.token, self.writer)
            return outcome
        except OthersWritingError:
            # Another delivery of this continuation is writing the same content: it commits.
            left = self.store.leave_fanout(event.owner, self.task.token, self.writer)
            return self._dropped() if left is None else Outcome(Status.RANGE_WRITTEN, event.owner)

    # --- the one commit ------------------------------------------------------------------------------
    def _finalize(self, state: ObjectState, own: RangeSummary | None = None) -> Outcome:
        services, task, event = self.services, self.task, self.event
        summaries = sorted(state.fanout_done)
        report = RejectsReport()
        for summary in summaries:
            if summary.rejected:
                _merge_part(services, task.part_key_of(summary.index), report)
        if not any(summary.saw_record for summary in summaries):
            report.add(0, Reason.EMPTY_OBJECT, "the object holds no records")
        try:
            outcome = finish_version(
                services,
                event,
                Lease(token=task.token, prior=task.prior, writer=self.writer),
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
        except OthersWritingError:
            # Another attempt at this range registered meanwhile: give up the claim; whoever leaves
            # last commits (the work above is the same whoever does it).
            left = self.store.leave_fanout(event.owner, task.token, self.writer, drop_claim=True)
            self._claimed = False
            if left is None:
                return self._dropped()
            return self._after_leaving(left, own or RangeSummary(self.index))
        # Committed as the sole writer: any other finalizer of this fan-out has left, done with the parts.
        for summary in summaries:
            if summary.rejected:
                services.reports.delete(task.part_key_of(summary.index))
        own = own or next((s for s in summaries if s.index == self.index), RangeSummary(self.index))
        # The outcome counts this range's records (each worker counts its own, so the metrics add up to
        # the object's); the detail gives the object's totals.
        outcome.detail = (
            f"range {self.index + 1} of {task.ranges}, the last: object committed with "
            f"{outcome.records_written} records, {outcome.records_rejected} rejected"
        )
        outcome.records_written, outcome.write_requests = own.written, own.requests
        outcome.records_rejected = own.rejected
        return outcome


def _log_leave_failure(error: Exception) -> None:
    import logging

    logging.getLogger(__name__).warning("leaving the fan-out failed too: %r", error)


def _range_writer(services: Services, task: RangeTask, builder: ItemBuilder) -> VersionWriter:
    return VersionWriter(services, task.event, builder, stale_up_to=task.stale_up_to)


def _merge_part(services: Services, key: str, report: RejectsReport) -> None:
    body = services.reports.get(key)
    if body is None:
        # Written before the range was marked done, never deleted: missing means someone removed it.
        # Say so in the report rather than commit a count the entries do not match.
        report.add(0, Reason.UNREADABLE_OBJECT, f"rejects of one range were lost ({key})")
        return
    part = json.loads(body)
    room = MAX_ENTRIES - len(report.entries)
    report.entries.extend(part["entries"][: max(room, 0)])
    report.total += int(part["total"])
