"""The delete-sync use case: an object left the bucket, so its records leave the table; or one version
of it left and an older one is current again, so the table mirrors that one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from functions.core.events import PERMANENTLY_DELETED, ObjectEvent
from functions.core.ingest import write_version
from functions.core.objects import CurrentVersion
from functions.core.repository import Commit
from functions.core.services import Lease, Outcome, Services, acquire_or_wait, release_after_failure


def delete_object(services: Services, event: ObjectEvent) -> Outcome:
    """Apply an Object Deleted event, committed with its sequencer so that a late or replayed Object
    Created event of an older version can never bring records back.

    A delete marker, or a delete on an unversioned bucket, removes every item the object owns.
    Permanently deleting one version of a versioned object only matters when it is the version the
    table mirrors (its records, or the delete marker behind a tombstone): the table then mirrors the
    version that is current now. Deleting a noncurrent version changes nothing (unless an interrupted
    attempt left the object's items in doubt: then the current version is mirrored again too).
    """
    lease = acquire_or_wait(services, event, natural=False)
    if lease is None:
        return Outcome("stale", event.owner, detail="a newer event of this object was already applied")
    if event.deletion_type != PERMANENTLY_DELETED or event.version_id is None:
        return _remove_everything(services, event, lease, tombstone_version=event.version_id)
    # After an interrupted attempt the table may hold part of some version: re-mirror rather than trust it.
    if lease.prior.version_id != event.version_id and not lease.prior.dirty:
        services.store.release(event.owner, lease.token, dirty=lease.prior.dirty)
        return Outcome("ignored", event.owner, detail="the deleted version is not the one the table mirrors")
    return _mirror_current_version(services, event, lease)


def _mirror_current_version(services: Services, event: ObjectEvent, lease: Lease) -> Outcome:
    """The mirrored version was permanently deleted: mirror whatever is current now, under this event.

    S3 has made an older version current without any Object Created event. Reading the current
    version (not a remembered "previous" one) is what keeps order: it reflects every change up to
    this deletion, so skipping older events afterwards loses nothing; if a newer upload already
    replaced it, that upload's event has a higher sequencer and is applied after this commit (or
    interrupts this write), so writing it early under this sequencer is harmless.
    """
    try:
        current = services.objects.open_current(event.bucket, event.key)
    except BaseException as failure:
        release_after_failure(services, event.owner, lease.token, failure)
        raise
    if not isinstance(current, CurrentVersion):
        # Nothing current (only version, or a delete marker on top): the key reads as deleted.
        return _remove_everything(services, event, lease, tombstone_version=current.delete_marker_version_id)
    mirrored = replace(event, version_id=current.version_id, etag=current.etag)
    outcome = write_version(services, mirrored, lease, current.body)
    if outcome.status == "ingested":
        outcome.status = "restored"
        outcome.detail = f"version {current.version_id} is current again"
    return outcome


def _remove_everything(
    services: Services, event: ObjectEvent, lease: Lease, *, tombstone_version: str | None
) -> Outcome:
    """Remove every item the object owns and commit a tombstone naming `tombstone_version` (the delete
    marker that hides the key, if known), so removing that marker later restores the records."""
    prior, store = lease.prior, services.store
    try:
        writer = store.writer()
        removed = 0
        for key in store.positions_after(event.key, 0):
            writer.delete(key)
            removed += 1
        writer.flush()
        if prior.natural_owned or prior.dirty:
            removed += store.delete_owned(store.owned_natural_keys(event.owner), event.owner, event.sequencer)
        store.commit(
            event.owner,
            lease.token,
            Commit(
                sequencer=event.sequencer,
                status="deleted",
                event_id=event.event_id,
                committed_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                version_id=tombstone_version,
            ),
        )
    except BaseException as failure:
        release_after_failure(services, event.owner, lease.token, failure)
        raise
    return Outcome("deleted", event.owner, items_removed=removed, write_requests=writer.requests)
