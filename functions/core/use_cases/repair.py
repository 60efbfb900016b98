"""Repair one object whose table state drifted from the bucket (`eventpipe reconcile --repair`).

There is no second way to write: the repair takes the object's lease exactly as an event would and runs
the shared write path (`mirror_object.mirror_current`: "make the table hold whatever version is current
now"). It uses the committed sequencer (acquire allows equal sequencers: duplicates and replays
reprocess) or, for an object without a state item, the lowest possible one. It never invents a higher
sequencer, which would make real later events of the object look stale.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from functions.core.domain.events import OBJECT_CREATED, SEQUENCER_WIDTH, ObjectEvent
from functions.core.domain.object_state import ObjectState
from functions.core.use_cases.mirror_object import mirror_current
from functions.core.use_cases.object_lease import acquire_or_wait, run_under_lease
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import Services

LOWEST_SEQUENCER = "0" * SEQUENCER_WIDTH
REPAIR_REASON = "Reconcile"


def repair_object(services: Services, bucket: str, key: str, *, committed: ObjectState) -> Outcome:
    """Make the table mirror the key's current version (or nothing), under the object's lease.

    `committed` is the state item as the caller read it; its sequencer is reused (never raised). The
    prior state is treated as dirty, so the write path cleans every position and natural key the object
    may own instead of trusting the summary that drifted.
    """
    event = ObjectEvent(
        event_id=f"reconcile-{uuid.uuid4()}",
        detail_type=OBJECT_CREATED,
        bucket=bucket,
        key=key,
        sequencer=committed.sequencer or LOWEST_SEQUENCER,
        reason=REPAIR_REASON,
    )
    dataset = services.datasets.for_key(key)
    lease = acquire_or_wait(services, event, natural=dataset.has_natural_key)
    if lease is None:
        # A newer event was committed or announced since `committed` was read: it owns the object now.
        return Outcome(Status.STALE, event.owner, detail="a newer event of this object took over")
    suspect = replace(lease, prior=replace(lease.prior, dirty=True))
    work = lambda: mirror_current(services, event, suspect, dataset)  # noqa: E731
    return run_under_lease(services, event, suspect, work)
