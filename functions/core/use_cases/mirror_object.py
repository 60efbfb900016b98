"""Make the table hold exactly one state of an object, under its lease: the records of one version, or
nothing. Ingest and delete-sync both end here, so the write path exists once.

Every function commits the event's sequencer (or raises, leaving the lease to `object_lease.holding`),
so after it no older event of the object can change the table again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import IO, Final

from functions.core.domain.datasets import Dataset
from functions.core.domain.events import ObjectEvent
from functions.core.domain.object_state import Checkpoint, Commit, ObjectState, StateStatus
from functions.core.domain.object_versions import CurrentVersion, NoCurrentVersion, UnreadableVersionError
from functions.core.domain.reasons import Reason
from functions.core.domain.records import ItemBuilder, Provenance
from functions.core.domain.rejects_report import RejectsReport, report_key
from functions.core.domain.table_layout import LEGACY_LAYOUT, Key, partitions_between
from functions.core.use_cases.object_lease import Lease, OutOfTime, Superseded
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import BatchWriter, Services
from functions.core.use_cases.version_writer import VersionWriter

# How often (in items) a large object's removal checks for a newer event and for the end of its time
# (a consistent read each time): seconds apart, for position-keyed items at the writer pool's rate
# (thousands a second) and for natural-key items deleted one conditional DeleteItem at a time.
REMOVAL_CHECK_EVERY: Final = 50_000
NATURAL_REMOVAL_CHECK_EVERY: Final = 1_000


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
    pace = _removal_pace(services, event, writer)
    try:
        removed = remove_positions_after(
            services, event, 0, prior, writer, pace=lambda done: pace(done, REMOVAL_CHECK_EVERY, done)
        )
        writer.flush()
    except BaseException:
        writer.close()  # no delete of this attempt may land after its lease is released
        raise
    if prior.natural_owned or prior.dirty:
        owned = _paced(store.owned_natural_keys(event.owner), pace, before=removed)
        removed += store.delete_owned(owned, event.owner)
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
        writer=lease.writer,
    )
    return Outcome(Status.DELETED, event.owner, items_removed=removed, write_requests=writer.requests)


def _paced(keys: Iterable[Key], pace: Pace, *, before: int) -> Iterator[Key]:
    """`keys` for the natural-key deleter (store.delete_owned: batches of 100 keys, one conditional
    DeleteItem each, in this thread), paced every NATURAL_REMOVAL_CHECK_EVERY keys: a multiple of its
    batch, so every key handed over before a check has been dealt with (deleted, or no longer owned)."""
    for count, key in enumerate(keys, start=1):
        yield key
        pace(count, NATURAL_REMOVAL_CHECK_EVERY, before + count)


Pace = Callable[[int, int, int], None]


def _removal_pace(services: Services, event: ObjectEvent, writer: BatchWriter) -> Pace:
    """`pace(done, every, removed)`, each `every` items of a large object's removal: stop for a newer
    event, and hand over to a continuation when the invocation is about to end. No checkpoint is needed:
    whoever goes on (a continuation, Lambda's retry, a redrive) queries what is left, the state dirty."""

    def pace(done: int, every: int, removed: int) -> None:
        if done % every:
            return
        if services.store.superseded(event.owner, event.sequencer):
            raise Superseded
        if services.hand_over_at is not None and services.clock() >= services.hand_over_at:
            writer.flush()  # nothing of this attempt may be in flight once the continuation starts
            raise OutOfTime(0, removed=removed)

    return pace


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
        Provenance.of_event(event, now),
    )
    # Positions this version leaves empty must not keep an older version's item. With a clean prior
    # state we know how far the old version reached; after an interrupted attempt we cannot.
    content = content_id(event)
    version = VersionWriter(
        services,
        event,
        builder,
        stale_up_to=None if prior.dirty else prior.last_position,
        resume_after=prior.resumable_from(event.sequencer, content),
        checkpoint=lambda position: store.checkpoint(
            event.owner, lease.token, Checkpoint(event.sequencer, content, position)
        ),
    )
    if unreadable is not None:
        version.report.add(
            0, Reason.UNREADABLE_OBJECT, f"S3 cannot serve this version to ingest: {unreadable}", b""
        )
    elif stream is not None:
        version.write_records(stream)
    return finish_version(
        services,
        event,
        lease,
        dataset,
        VersionResult(
            written=version.written,
            last_position=version.last_position,
            report=version.report,
            requests=version.requests,
            unreadable=unreadable is not None,
            committed_at=now,
            wrote=version.wrote,
        ),
        status=status,
    )


def content_id(event: ObjectEvent) -> str:
    """What identifies the content an event's records come from (for checkpoints)."""
    return f"{event.version_id or ''}|{event.etag or ''}"


@dataclass(slots=True)
class VersionResult:
    """What writing one version (whole, or all ranges of a fan-out) produced, ready to commit."""

    written: int
    last_position: int
    report: RejectsReport
    requests: int
    committed_at: str
    unreadable: bool = False
    wrote: Callable[[str], bool] = lambda _partition: False  # natural-key items this version wrote


def finish_version(
    services: Services,
    event: ObjectEvent,
    lease: Lease,
    dataset: Dataset,
    result: VersionResult,
    *,
    status: Status,
) -> Outcome:
    """Remove what older versions left, put (or clear) the rejects report, and commit, once."""
    store, prior = services.store, lease.prior
    removed = _remove_leftovers(services, event, dataset, prior, result)
    report = result.report
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
            status=StateStatus.UNREADABLE if result.unreadable else StateStatus.PRESENT,
            event_id=event.event_id,
            committed_at=result.committed_at,
            version_id=event.version_id,
            etag=event.etag,
            dataset=dataset.name,
            record_count=result.written,
            rejected_count=report.total,
            last_position=0 if dataset.has_natural_key else result.last_position,
            # Sticky: the by-owner index may not list an item written moments ago (see remove_everything).
            natural_owned=dataset.has_natural_key or prior.natural_owned,
        ),
        writer=lease.writer,
    )
    return Outcome(
        status,
        event.owner,
        records_written=result.written,
        records_rejected=report.total,
        items_removed=removed,
        write_requests=result.requests,
        report_key=key if report.total else None,
    )


def remove_positions_after(
    services: Services,
    event: ObjectEvent,
    keep_up_to: int,
    prior: ObjectState,
    writer: BatchWriter,
    *,
    pace: Callable[[int], None] | None = None,
) -> int:
    """Delete the object's position-keyed items beyond `keep_up_to` (strongly consistent queries of
    the partitions that can hold them; table_layout.py); `pace` sees the count after each delete."""
    store = services.store
    removed = 0
    # Every clean commit removed the positions beyond its own end (a delete commits 0), so a clean
    # prior state bounds what exists: the queries run only after an interrupted attempt or when the
    # previous version reached further. This saves the requests for every first upload.
    if prior.dirty or prior.last_position > keep_up_to:
        last = None if prior.dirty else prior.last_position
        for partition in partitions_between(event.key, keep_up_to + 1, last):
            for key in store.positions_after(partition, keep_up_to, event.owner):
                writer.delete(key)
                removed += 1
                if pace is not None:
                    pace(removed)
    if prior.layout == LEGACY_LAYOUT or prior.dirty:
        # Items of the layout before shards (pk = object key): none of them is this version's. After
        # an interrupted attempt (or in a repair, which treats the state as suspect) they are looked
        # for too: whatever put them there, nothing should be left under that key.
        for key in store.positions_after(event.key, 0, event.owner):
            writer.delete(key)
            removed += 1
            if pace is not None:
                pace(removed)
    return removed


def _remove_leftovers(
    services: Services, event: ObjectEvent, dataset: Dataset, prior: ObjectState, result: VersionResult
) -> int:
    """Delete what earlier versions (or interrupted attempts) of this object wrote and this version does
    not (the lease is held)."""
    store = services.store
    # Position-keyed items beyond this version's end (a shorter overwrite, or a dataset change).
    keep_up_to = result.last_position if not dataset.has_natural_key else 0
    writer = store.writer()
    try:
        removed = remove_positions_after(services, event, keep_up_to, prior, writer)
        writer.flush()
    except BaseException:
        writer.close()  # no delete of this attempt may land after its lease is released
        raise
    # Natural-key items can only exist if a committed or interrupted earlier attempt wrote some; the
    # index walk (a read per owned item) is skipped for first uploads and position-keyed objects.
    if prior.natural_owned or prior.dirty:
        owned = store.owned_natural_keys(event.owner)
        leftovers = (key for key in owned if not result.wrote(key["pk"]["S"]))
        removed += store.delete_owned(leftovers, event.owner)
    return removed
