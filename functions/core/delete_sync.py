"""The delete-sync use case: an object left the bucket, so its records leave the table."""

from __future__ import annotations

from datetime import UTC, datetime

from functions.core.events import PERMANENTLY_DELETED, ObjectEvent
from functions.core.repository import Commit, ObjectState
from functions.core.services import Outcome, Services, acquire_or_wait, release_after_failure


def delete_object(services: Services, event: ObjectEvent) -> Outcome:
    """Apply an Object Deleted event: remove every item the object owns and remember the deletion.

    The deletion is committed with its sequencer, so a late or replayed Object Created event of an
    older version can never bring the records back.
    """
    lease = acquire_or_wait(services, event, natural=False)
    if lease is None:
        return Outcome("stale", event.owner, detail="a newer event of this object was already applied")
    prior = lease.prior
    store = services.store
    if not _removes_mirrored_version(event, prior):
        store.release(event.owner, lease.token, dirty=prior.dirty)
        return Outcome("ignored", event.owner, detail="the deleted version is not the one the table mirrors")
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
                version_id=event.version_id,
            ),
        )
    except BaseException as failure:
        release_after_failure(services, event.owner, lease.token, failure)
        raise
    return Outcome("deleted", event.owner, items_removed=removed, write_requests=writer.requests)


def _removes_mirrored_version(event: ObjectEvent, prior: ObjectState) -> bool:
    """Does this deletion take away the content the table mirrors?

    A delete marker (versioned bucket) or a delete on an unversioned bucket always does. Permanently
    deleting one version of a versioned object (noncurrent-version lifecycle, or a version delete) only
    does when it is the version the table holds; otherwise the current content is untouched.
    """
    if event.deletion_type != PERMANENTLY_DELETED or event.version_id is None:
        return True
    return prior.status == "present" and prior.version_id == event.version_id
