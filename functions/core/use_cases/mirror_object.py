"""Make the table hold exactly one state of an object, under its lease: the records of one version, or
nothing. Ingest and delete-sync both end here, so the write path exists once.

Every function commits the event's sequencer (or raises, leaving the lease to `object_lease.holding`),
so after it no older event of the object can change the table again.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import IO, Any, Final

from functions.core.domain.datasets import Dataset
from functions.core.domain.events import ObjectEvent
from functions.core.domain.formats import SUPPORTED_DESCRIPTION, detect_format
from functions.core.domain.object_state import Commit, ObjectState, StateStatus
from functions.core.domain.object_versions import CurrentVersion, NoCurrentVersion, UnreadableVersionError
from functions.core.domain.readers import BLANK, Malformed, RecordStream, UnreadableObjectError, read_records
from functions.core.domain.reasons import Reason
from functions.core.domain.records import ItemBuilder, Provenance, RecordRejectedError
from functions.core.domain.rejects_report import RejectsReport, report_key
from functions.core.domain.table_layout import AttributeValue, Item, position_sort_key
from functions.core.use_cases.object_lease import Lease, Superseded
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import BatchWriter, Services

# How often (in records) a long-running ingest checks whether a newer event is waiting for the object.
SUPERSEDE_CHECK_EVERY: Final = 2000
# Raw text kept for the records still buffered in the batch writer, so that a record DynamoDB refuses is
# quoted as written. The writer holds at most 25 requests; twice that leaves room for its deletes.
_RAW_KEPT: Final = 64
# How much of a natural-key record's text is kept to quote it should a later record take its key.
_NATURAL_RAW_KEPT: Final = 512


def write_version(
    services: Services,
    event: ObjectEvent,
    lease: Lease,
    dataset: Dataset,
    stream: IO[bytes] | UnreadableVersionError,
    *,
    status: Status = Status.INGESTED,
) -> Outcome:
    """Make the table hold exactly the records of `stream`, the version `event` names, and commit it
    with the event's sequencer. A version S3 can never serve (`UnreadableVersionError`) is reported
    and committed as unreadable: the table then holds no records for the object."""
    if isinstance(stream, UnreadableVersionError):
        return _write(services, event, lease, dataset, None, unreadable=stream, status=Status.UNREADABLE)
    with stream:  # returns the HTTP connection to the pool even when reading stops early
        return _write(services, event, lease, dataset, stream, unreadable=None, status=status)


def remove_everything(
    services: Services, event: ObjectEvent, lease: Lease, *, tombstone_version: str | None
) -> Outcome:
    """Remove every item the object owns and commit a tombstone naming `tombstone_version` (the delete
    marker that hides the key, if known)."""
    prior, store = lease.prior, services.store
    writer = store.writer()
    removed = 0
    for key in store.positions_after(event.key, 0):
        writer.delete(key)
        removed += 1
    writer.flush()
    if prior.natural_owned or prior.dirty:
        removed += store.delete_owned(store.owned_natural_keys(event.owner), event.owner)
    store.commit(
        event.owner,
        lease.token,
        Commit(
            sequencer=event.sequencer,
            status=StateStatus.DELETED,
            event_id=event.event_id,
            committed_at=services.timestamp(),
            version_id=tombstone_version,
            # The by-owner index is eventually consistent: an item it missed this time is found by
            # the object's next event, as long as the flag stays set.
            natural_owned=prior.natural_owned,
        ),
    )
    return Outcome(Status.DELETED, event.owner, items_removed=removed, write_requests=writer.requests)


def mirror_current(services: Services, event: ObjectEvent, lease: Lease, dataset: Dataset) -> Outcome:
    """Make the table mirror whatever version of the key is current now, committed under `event`.

    Used when S3 changed which version is current without an Object Created event (a version or a
    delete marker was permanently deleted). The current content reflects every change up to this
    event, so skipping older events after the commit loses nothing; a newer change has a higher
    sequencer and is applied after this commit (or interrupts this write).
    """
    try:
        current = services.objects.open_current(event.bucket, event.key)
    except UnreadableVersionError as unreadable:
        return write_version(services, replace(event, version_id=None, etag=None), lease, dataset, unreadable)
    if isinstance(current, NoCurrentVersion):
        return remove_everything(services, event, lease, tombstone_version=current.delete_marker_version_id)
    if _already_mirrors(lease.prior, current):
        current.body.close()
        services.store.advance(
            event.owner,
            lease.token,
            sequencer=event.sequencer,
            event_id=event.event_id,
            committed_at=services.timestamp(),
        )
        return Outcome(Status.UNCHANGED, event.owner, detail=f"version {current.version_id} stays current")
    mirrored = replace(event, version_id=current.version_id, etag=current.etag)
    outcome = write_version(
        services,
        mirrored,
        lease,
        dataset,
        current.body,
        status=Status.RESTORED,
    )
    outcome.detail = f"version {current.version_id} is current"
    return outcome


def _already_mirrors(prior: ObjectState, current: CurrentVersion) -> bool:
    """The committed, clean state holds exactly the current version's records (or its report)."""
    return (
        not prior.dirty
        and prior.status in (StateStatus.PRESENT, StateStatus.UNREADABLE)
        and prior.version_id is not None
        and prior.version_id == current.version_id
        and (prior.etag is None or current.etag is None or prior.etag == current.etag)
    )


def _write(
    services: Services,
    event: ObjectEvent,
    lease: Lease,
    dataset: Dataset,
    stream: IO[bytes] | None,
    *,
    unreadable: UnreadableVersionError | None,
    status: Status,
) -> Outcome:
    """Under the lease: write the version's records, remove older leftovers, report rejects, commit."""
    store, prior = services.store, lease.prior
    now = services.timestamp()
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
    if unreadable is not None:
        version.report.add(
            0, Reason.UNREADABLE_OBJECT, f"S3 cannot serve this version to ingest: {unreadable}", b""
        )
    elif stream is not None:
        version.write_records(stream)
    removed = _remove_leftovers(services, event, dataset, prior, version)
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
            status=StateStatus.UNREADABLE if unreadable is not None else StateStatus.PRESENT,
            event_id=event.event_id,
            committed_at=now,
            version_id=event.version_id,
            etag=event.etag,
            dataset=dataset.name,
            record_count=version.written,
            rejected_count=report.total,
            last_position=0 if dataset.has_natural_key else version.last_position,
            # Sticky: the by-owner index may not list an item written moments ago (see remove_everything).
            natural_owned=dataset.has_natural_key or prior.natural_owned,
        ),
    )
    return Outcome(
        status,
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
        self._raw: dict[int, bytes] = {}  # position -> JSON Lines text of records the writer may still send
        # natural key digest -> (position, raw text prefix) of the record currently holding that key
        self._natural: dict[bytes, tuple[int, bytes | None]] = {}
        self._writer = services.store.writer(self._refuse)
        self._records: RecordStream | None = None  # the stream being written (for `.json` quotes)
        self.report = RejectsReport()
        self.written = 0
        self.last_position = 0

    @property
    def requests(self) -> int:
        return self._writer.requests

    def write_records(self, stream: IO[bytes]) -> None:
        fmt = detect_format(self._event.key)
        if fmt is None:
            self.report.add(0, Reason.UNSUPPORTED_FORMAT, SUPPORTED_DESCRIPTION)
        else:
            try:
                self._write_all(read_records(stream, fmt, max_json_bytes=self._services.max_json_bytes))
            except UnreadableObjectError as unreadable:
                self.report.add(unreadable.position, unreadable.reason, unreadable.detail)
            except BaseException:
                self._writer.close()  # no request of this attempt may land after its lease is released
                raise
        self._writer.flush()
        self._clear_refused_positions()

    def _write_all(self, records: RecordStream) -> None:
        store, event, build, writer = self._services.store, self._event, self._builder.build, self._writer
        self._records = records
        for position, value in records:
            self.last_position = position
            if value is BLANK:
                self._clear(position)
                continue
            if type(value) is Malformed:
                self.report.add(position, value.reason, value.detail, value.raw)
                self._clear(position)
                continue
            # JSON Lines: the line is at hand, keep it. A .json object keeps its whole text, and finding
            # an element in it costs ~3 us: only done below for a record that is actually quoted.
            raw = None if records.keeps_text else records.current_line
            try:
                item = build(position, value)
            except RecordRejectedError as rejected:
                quote = self._quote(position, raw) or value
                self.report.add(position, rejected.reason, rejected.detail, quote)
                self._clear(position)
                continue
            if not self._position_keyed:
                self._claim_natural_key(item, position, raw)
            if raw is not None:
                self._raw[position] = raw
                if len(self._raw) > _RAW_KEPT:
                    del self._raw[next(iter(self._raw))]
            writer.put(item)
            self.written += 1
            if self.written % SUPERSEDE_CHECK_EVERY == 0 and store.superseded(event.owner, event.sequencer):
                raise Superseded

    def _quote(self, position: int, raw: bytes | None) -> bytes | None:
        """The record's text as written: the kept line, or the element of a `.json` object's text."""
        if raw is not None:
            return raw
        return self._records.raw_at(position) if self._records is not None else None

    def _claim_natural_key(self, item: Item, position: int, raw: bytes | None) -> None:
        """Two records of one object with the same natural key: the later one wins (it overwrites the
        item), the earlier one is reported, and the count of written records stays exact."""
        partition = item["pk"]["S"]
        digest = _digest(partition)
        earlier = self._natural.get(digest)
        # A JSON Lines line is gone once read, so a prefix is kept; a .json text is kept whole anyway.
        self._natural[digest] = (position, raw[:_NATURAL_RAW_KEPT] if raw is not None else None)
        if earlier is None:
            return
        earlier_position, earlier_prefix = earlier
        earlier_raw = self._quote(earlier_position, earlier_prefix) or b""
        self.written -= 1
        self.report.add(
            earlier_position,
            Reason.DUPLICATE_NATURAL_KEY,
            f"natural key {partition!r} again at position {position}, which wins",
            earlier_raw,
        )

    def wrote(self, partition: str) -> bool:
        """Whether this version wrote the natural-key item `partition` (its leftovers are the others)."""
        return _digest(partition) in self._natural

    def _clear(self, position: int, writer: BatchWriter | None = None) -> None:
        """Delete what an older version may have left at a position this version leaves empty."""
        if self._position_keyed and (self._stale_up_to is None or position <= self._stale_up_to):
            key = {"pk": {"S": self._event.key}, "sk": {"S": position_sort_key(position)}}
            (writer or self._writer).delete(key)

    def _refuse(self, item: Item, message: str) -> None:
        position = int(item["position"]["N"])
        if not self._position_keyed:
            # Not written after all: an older version's item under that key is a leftover to remove.
            digest = _digest(item["pk"]["S"])
            if self._natural.get(digest, (None,))[0] == position:
                del self._natural[digest]
        self._refused.append(position)
        self.written -= 1
        self.report.add(
            position,
            Reason.REFUSED_BY_DYNAMODB,
            message,
            # A pool of writers reports a refusal after later lines were read (their text is gone):
            # then the record is quoted from the item that was refused.
            self._quote(position, self._raw.get(position)) or _record_of(item["data"]),
        )

    def _clear_refused_positions(self) -> None:
        if not self._refused:
            return
        # A second writer: the first one calls `_refuse` while it is sending.
        cleaner = self._services.store.writer()
        for position in self._refused:
            self._clear(position, cleaner)
        cleaner.flush()


def _record_of(value: AttributeValue) -> Any:
    """The record an item's `data` attribute holds (numbers as their text), to quote it in a report."""
    kind, inner = next(iter(value.items()))
    if kind == "M":
        return {name: _record_of(member) for name, member in inner.items()}
    if kind == "L":
        return [_record_of(member) for member in inner]
    if kind == "NULL":
        return None
    return inner  # S, N (text), BOOL


def _digest(partition: str) -> bytes:
    # 16 bytes per natural key this version wrote, instead of the key itself (up to 2 KB).
    return hashlib.blake2b(partition.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _remove_leftovers(
    services: Services, event: ObjectEvent, dataset: Dataset, prior: ObjectState, version: _VersionWriter
) -> int:
    """Delete what earlier versions (or interrupted attempts) of this object wrote and this version does
    not (the lease is held)."""
    store = services.store
    removed = 0
    # Position-keyed items beyond this version's end (a shorter overwrite, or a dataset change).
    keep_up_to = version.last_position if not dataset.has_natural_key else 0
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
        owned = store.owned_natural_keys(event.owner)
        leftovers = (key for key in owned if not version.wrote(key["pk"]["S"]))
        removed += store.delete_owned(leftovers, event.owner)
    return removed
