"""The delete-sync use case: an object left the bucket, so its records leave the table; or one version
of it left and another one is current now, so the table mirrors that one."""

from __future__ import annotations

from functions.core.domain.datasets import Dataset
from functions.core.domain.events import ObjectEvent
from functions.core.use_cases.fan_out import continue_elsewhere
from functions.core.use_cases.key_resolution import resolve_deleted_key
from functions.core.use_cases.mirror_object import mirror_current, remove_everything
from functions.core.use_cases.object_lease import (
    Lease,
    OutOfTime,
    acquire_or_wait,
    run_under_lease,
)
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import Services


def delete_object(services: Services, event: ObjectEvent) -> Outcome:
    """Apply an Object Deleted event, committed with its sequencer so that a late or replayed event of
    an older version can never bring records back.

    A delete marker, or a delete on an unversioned bucket, removes every item the object owns.
    Permanently deleting one version of a versioned object (a version or a delete marker, current or
    not) can change which version is current without any other event, so the table then mirrors
    whatever is current now — read from S3, never inferred from what the state item remembers.
    """
    event = resolve_deleted_key(services, event)
    # A version deletion may restore a version whose records are natural-key items: flag it up front.
    dataset = services.datasets.for_key(event.key)
    lease = acquire_or_wait(services, event, natural=dataset.has_natural_key)
    if lease is None:
        return Outcome(Status.STALE, event.owner, detail="a newer event of this object was already applied")

    def work() -> Outcome:
        try:
            return apply_delete(services, event, lease, dataset)
        except OutOfTime as stopped:
            return continue_elsewhere(services, event, lease, dataset, stopped)

    return run_under_lease(services, event, lease, work)


def apply_delete(services: Services, event: ObjectEvent, lease: Lease, dataset: Dataset) -> Outcome:
    """The delete's work under `lease`; raises `OutOfTime` when the invocation is about to end, and then
    a continuation (the range worker, range_ingest.py) runs it again from where the table is now:
    removal re-queries what is left, a restored version resumes from its checkpoint."""
    if event.is_permanent_version_delete:
        return mirror_current(services, event, lease, dataset)
    return remove_everything(services, event, lease, tombstone_version=event.version_id)
