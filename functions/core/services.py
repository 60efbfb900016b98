"""What the use cases share: their ports (`Services`), their result (`Outcome`) and the object lease."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from functions.core.datasets import DatasetRegistry
from functions.core.events import ObjectEvent
from functions.core.objects import ObjectReader
from functions.core.rejects import ReportSink
from functions.core.repository import Acquired, ObjectState, RecordStore, TransientStoreError


class ObjectBusyError(TransientStoreError):
    """Another processor holds the object's lease longer than this invocation can wait: retry later."""


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    lease_seconds: float = 330.0
    max_wait_seconds: float = 60.0
    poll_seconds: float = 0.25


@dataclass(slots=True)
class Outcome:
    """What one event did; the handler turns it into logs and metrics."""

    status: str  # ingested | restored | deleted | stale | superseded | ignored
    object_id: str
    records_written: int = 0
    records_rejected: int = 0
    items_removed: int = 0
    write_requests: int = 0
    report_key: str | None = None
    detail: str = ""


@dataclass(slots=True)
class Services:
    """The ports a use case talks to (real AWS clients in Lambda, moto or fakes in tests)."""

    store: RecordStore
    objects: ObjectReader
    reports: ReportSink
    datasets: DatasetRegistry
    max_json_bytes: int
    lease: LeasePolicy = field(default_factory=LeasePolicy)
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    # The Lambda request id: constant across Lambda's retries of one invocation, different for a
    # duplicate delivery of the same event (a separate invocation).
    invocation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to change one object's items, held by one processing attempt."""

    token: str
    prior: ObjectState


def lease_token(services: Services, event: ObjectEvent) -> str:
    """Retries of an attempt reclaim their own lease at once; two concurrent deliveries of one event do
    not share it (they would otherwise both write, one past the other's commit)."""
    return f"{event.event_id}/{services.invocation_id}" if services.invocation_id else event.event_id


def acquire_or_wait(services: Services, event: ObjectEvent, *, natural: bool) -> Lease | None:
    """Take the object's lease for this event; None when the event is stale (a newer one exists)."""
    store, policy = services.store, services.lease
    token = lease_token(services, event)
    deadline = services.clock() + policy.max_wait_seconds
    announced = False
    pause = policy.poll_seconds
    while True:
        result = store.acquire(
            event.owner,
            event.sequencer,
            token,
            now=services.clock(),
            lease_seconds=policy.lease_seconds,
            natural=natural,
        )
        if isinstance(result, Acquired):
            return Lease(token=token, prior=result.prior)
        if result.stale:
            if result.current.lease_token == token:
                # Our own earlier attempt (crashed, now retried) still holds the lease: hand it over now
                # rather than make the newer event wait for the lease to expire.
                store.release(event.owner, token, dirty=True)
            return None
        if not announced and (result.current.lease_token is not None):
            store.announce(event.owner, event.sequencer)
            announced = True
        if services.clock() + pause > deadline:
            raise ObjectBusyError(f"{event.owner} is being processed by another event; retry later")
        services.sleep(pause)
        pause = min(pause * 2, 5.0)


def release_after_failure(services: Services, owner: str, token: str, failure: BaseException) -> None:
    """Give the lease back (marked dirty) before `failure` propagates. If that fails too, the original
    failure still surfaces, with a note: an unreleased lease expires by itself."""
    try:
        services.store.release(owner, token, dirty=True)
    except Exception as release_error:
        failure.add_note(f"releasing the lease of {owner} failed too: {release_error!r}")
