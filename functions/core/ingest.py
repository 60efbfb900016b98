"""The ingest use case: make the table hold exactly the records of the object version an event names.

Convergence (details in docs/data-model.md): a per-object state item orders events by S3 sequencer and
serializes processors with a lease. Under the lease the records are written (BatchWriteItem, 25 per
request), the previous version's leftovers are removed, and the state is committed; an older event
is skipped, a newer one waits for the lease (and asks the holder to stop early).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Final

from functions.core.datasets import Dataset
from functions.core.events import ObjectEvent
from functions.core.formats import (
    BLANK,
    Malformed,
    Reason,
    RecordStream,
    UnreadableObjectError,
    detect_format,
    read_records,
)
from functions.core.records import Item, ItemBuilder, Provenance, RecordRejectedError, position_sort_key
from functions.core.rejects import RejectsReport, report_key
from functions.core.repository import BatchWriter, Commit, ObjectState
from functions.core.services import Lease, Outcome, Services, acquire_or_wait, release_after_failure

# How often (in records) a long-running ingest checks whether a newer event is waiting for the object.
SUPERSEDE_CHECK_EVERY: Final = 2000


class Superseded(Exception):  # control flow, not an error
    """A newer event of the same object is waiting: stop writing, it will finish the job."""


def ingest_object(services: Services, event: ObjectEvent) -> Outcome:
    """Apply an Object Created event to the table (idempotent, order-independent)."""
    dataset = services.datasets.for_key(event.key)
    lease = acquire_or_wait(services, event, natural=dataset.has_natural_key)
    if lease is None:
        return Outcome("stale", event.owner, detail="a newer event of this object was already applied")
    store = services.store
    try:
        stream = services.objects.open(event.bucket, event.key, version_id=event.version_id, etag=event.etag)
        if stream is None:
            store.release(event.owner, lease.token, dirty=lease.prior.dirty)
            return Outcome("stale", event.owner, detail="the announced object version no longer exists")
    except BaseException as failure:
        release_after_failure(services, event.owner, lease.token, failure)
        raise
    return write_version(services, event, lease, stream)


def write_version(services: Services, event: ObjectEvent, lease: Lease, stream: IO[bytes]) -> Outcome:
    """Under `lease`: make the table hold exactly the records of `stream`, the version `event` names,
    and commit it with the event's sequencer. The lease is released whatever happens; the stream is
    closed. (delete-sync also calls this when a deletion makes an older version current again.)"""
    dataset = services.datasets.for_key(event.key)
    try:
        with stream:  # returns the HTTP connection to the pool even when reading stops early
            return _write_version(services, event, dataset, lease, stream)
    except Superseded:
        services.store.release(event.owner, lease.token, dirty=True)
        return Outcome("superseded", event.owner, detail="a newer event took over")
    except BaseException as failure:
        release_after_failure(services, event.owner, lease.token, failure)
        raise


def _write_version(
    services: Services, event: ObjectEvent, dataset: Dataset, lease: Lease, stream: IO[bytes]
) -> Outcome:
    """Under the lease: write the version's records, remove older leftovers, report rejects, commit."""
    store, prior = services.store, lease.prior
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    builder = ItemBuilder(
        dataset,
        Provenance(
            bucket=event.bucket,
            key=event.key,
            sequencer=event.sequencer,
            event_id=event.event_id,
            ingested_at=now,
            version_id=event.version_id,
            etag=event.etag,
            replay_name=event.replay_name,
        ),
    )
    # Positions this version leaves empty must not keep an older version's item. With a clean prior
    # state we know how far the old version reached; after an interrupted attempt we cannot.
    version = _VersionWriter(
        services, event, builder, stale_up_to=None if prior.dirty else prior.last_position
    )
    version.write_records(stream)
    removed = _remove_leftovers(services, event, dataset, prior, version.last_position)
    report = version.report
    key = report_key(event.bucket, event.key, event.sequencer)
    if report.total:
        services.reports.put(key, report.render())
    elif prior.sequencer == event.sequencer and prior.rejected_count:
        services.reports.delete(key)  # reprocessing fixed what an earlier run rejected
    store.commit(
        event.owner,
        lease.token,
        Commit(
            sequencer=event.sequencer,
            status="present",
            event_id=event.event_id,
            committed_at=now,
            version_id=event.version_id,
            etag=event.etag,
            dataset=dataset.name,
            record_count=version.written,
            rejected_count=report.total,
            last_position=0 if dataset.has_natural_key else version.last_position,
            natural_owned=dataset.has_natural_key,
        ),
    )
    return Outcome(
        "ingested",
        event.owner,
        records_written=version.written,
        records_rejected=report.total,
        items_removed=removed,
        write_requests=version.requests,
        report_key=key if report.total else None,
    )


class _VersionWriter:
    """Streams one object version into the table: items for good records, report entries for the rest."""

    def __init__(
        self, services: Services, event: ObjectEvent, builder: ItemBuilder, *, stale_up_to: int | None
    ) -> None:
        self._services = services
        self._event = event
        self._builder = builder
        self._stale_up_to = stale_up_to
        self._position_keyed = not builder.dataset.has_natural_key
        self._refused: list[int] = []
        self._writer = services.store.writer(self._refuse)
        self.report = RejectsReport()
        self.written = 0
        self.last_position = 0

    @property
    def requests(self) -> int:
        return self._writer.requests

    def write_records(self, stream: IO[bytes]) -> None:
        fmt = detect_format(self._event.key)
        if fmt is None:
            self.report.add(0, Reason.UNSUPPORTED_FORMAT, "supported: .json, .jsonl, .ndjson, optionally .gz")
        else:
            try:
                self._write_all(read_records(stream, fmt, max_json_bytes=self._services.max_json_bytes))
            except UnreadableObjectError as unreadable:
                self.report.add(unreadable.position, unreadable.reason, unreadable.detail)
        self._writer.flush()
        self._clear_refused_positions()

    def _write_all(self, records: RecordStream) -> None:
        store, event, build, writer = self._services.store, self._event, self._builder.build, self._writer
        for position, value in records:
            self.last_position = position
            if value is BLANK:
                self._clear(position)
                continue
            if type(value) is Malformed:
                self.report.add(position, value.reason, value.detail, value.raw)
                self._clear(position)
                continue
            try:
                item = build(position, value)
            except RecordRejectedError as rejected:
                # Quote the line as written (exact numbers, NaN) when there is one.
                self.report.add(position, rejected.reason, rejected.detail, records.current_line or value)
                self._clear(position)
                continue
            writer.put(item)
            self.written += 1
            if self.written % SUPERSEDE_CHECK_EVERY == 0 and store.superseded(event.owner, event.sequencer):
                raise Superseded

    def _clear(self, position: int, writer: BatchWriter | None = None) -> None:
        """Delete what an older version may have left at a position this version leaves empty."""
        if self._position_keyed and (self._stale_up_to is None or position <= self._stale_up_to):
            key = {"pk": {"S": self._event.key}, "sk": {"S": position_sort_key(position)}}
            (writer or self._writer).delete(key)

    def _refuse(self, item: Item, message: str) -> None:
        position = int(item["position"]["N"])
        self._refused.append(position)
        self.written -= 1
        self.report.add(position, Reason.REFUSED_BY_DYNAMODB, message, item["data"])

    def _clear_refused_positions(self) -> None:
        if not self._refused:
            return
        # A second writer: the first one calls `_refuse` while it is sending.
        cleaner = self._services.store.writer()
        for position in self._refused:
            self._clear(position, cleaner)
        cleaner.flush()


def _remove_leftovers(
    services: Services, event: ObjectEvent, dataset: Dataset, prior: ObjectState, last_position: int
) -> int:
    """Delete what older versions of this object wrote and this version does not (the lease is held)."""
    store = services.store
    removed = 0
    # Position-keyed items beyond this version's end (a shorter overwrite, or a dataset change).
    keep_up_to = last_position if not dataset.has_natural_key else 0
    # Every clean commit removed the positions beyond its own end (a delete commits 0), so a clean
    # prior state bounds what exists: the query runs only after an interrupted attempt or when the
    # previous version reached further. This saves a request per first upload.
    if prior.dirty or prior.last_position > keep_up_to:
        writer = store.writer()
        for key in store.positions_after(event.key, keep_up_to):
            writer.delete(key)
            removed += 1
        writer.flush()
    # Natural-key items can only exist if a committed or interrupted earlier attempt wrote some; the
    # index walk (a read per owned item) is skipped for first uploads and position-keyed objects.
    if prior.natural_owned or prior.dirty:
        removed += store.delete_owned(store.owned_natural_keys(event.owner), event.owner, event.sequencer)
    return removed
