"""The ingest use case: make the table hold exactly the records of the object version an event names.

Convergence (details in docs/data-model.md): a per-object state item orders events by S3 sequencer
and serializes processors with a lease (`object_lease.py`); under it `mirror_object.py` writes the
records, removes the previous version's leftovers and commits. An older event is skipped, a newer one
waits for the lease (and asks the holder to stop early). An object above the fan-out threshold is split
into ranges that range workers write in parallel under the same lease (`fan_out.py`).
"""

from __future__ import annotations

from functions.core.domain.events import ObjectEvent
from functions.core.domain.object_state import StateStatus
from functions.core.domain.object_versions import UnreadableVersionError
from functions.core.use_cases.fan_out import continue_elsewhere, fan_out, should_fan_out
from functions.core.use_cases.key_resolution import resolve_created_key
from functions.core.use_cases.mirror_object import write_version
from functions.core.use_cases.object_lease import (
    Lease,
    OutOfTime,
    acquire_or_wait,
    release_unchanged,
    run_under_lease,
)
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import Services


def ingest_object(services: Services, event: ObjectEvent) -> Outcome:
    """Apply an Object Created event to the table (idempotent, order-independent)."""
    event = resolve_created_key(services, event)
    dataset = services.datasets.for_key(event.key)
    lease = acquire_or_wait(services, event, natural=dataset.has_natural_key)
    if lease is None:
        return Outcome(Status.STALE, event.owner, detail="a newer event of this object was already applied")

    def work() -> Outcome:
        if _already_reported_unreadable(lease, event):
            release_unchanged(services, event.owner, lease)
            return Outcome(Status.UNREADABLE, event.owner, detail="already reported as unreadable")
        if should_fan_out(services, event, dataset):
            return fan_out(services, event, lease, dataset)
        try:
            stream = services.objects.open(
                event.bucket, event.key, version_id=event.version_id, etag=event.etag
            )
        except UnreadableVersionError as unreadable:
            return write_version(services, event, lease, dataset, unreadable)
        if stream is None:
            release_unchanged(services, event.owner, lease)
            # A later event (an overwrite or a deletion) describes what the key holds now.
            return Outcome(Status.STALE, event.owner, detail="the announced object version no longer exists")
        try:
            return write_version(services, event, lease, dataset, stream)
        except OutOfTime as stopped:
            return continue_elsewhere(services, event, lease, dataset, stopped)

    return run_under_lease(services, event, lease, work)


def _already_reported_unreadable(lease: Lease, event: ObjectEvent) -> bool:
    """A duplicate or replay of an event whose version S3 can never serve: the report stands."""
    prior = lease.prior
    return (
        not prior.dirty
        and prior.status == StateStatus.UNREADABLE
        and prior.sequencer == event.sequencer
        and prior.version_id == event.version_id
    )
