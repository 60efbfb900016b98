"""The object lease: one processing attempt at a time may change an object's items.

`acquire_or_wait` takes it (or says the event is stale); `holding` guarantees that an attempt which
fails, for whatever reason, gives it back marked dirty, so the next attempt cleans conservatively.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from functions.core.domain.events import ObjectEvent
from functions.core.domain.object_state import Acquired, ObjectState, TransientStoreError
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import Services


class ObjectBusyError(TransientStoreError):
    """Another processor holds the object's lease longer than this invocation can wait: retry later."""


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to change one object's items, held by one processing attempt."""

    token: str
    prior: ObjectState
    # A fan-out worker sharing the lease with others (range_ingest.py): it commits only as sole writer.
    writer: str | None = None


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
        current = result.current
        # A Lambda retry (same request id, same token) of an attempt that handed the object over: the
        # store does not let it reclaim the lease while a continuation may hold it (see below).
        handed_over = current.lease_token == token and current.fanout_token == token
        if result.stale:
            if handed_over:
                _supersede_idle_fanout(services, event, current, token)
            elif current.lease_token == token:
                # Our own earlier attempt (crashed, now retried) still holds the lease: hand it over now
                # rather than make the newer event wait for the lease to expire.
                store.release(event.owner, token, dirty=True)
            return None
        if not announced and current.lease_token is not None and not handed_over:
            store.announce(event.owner, event.sequencer)
            announced = True
        if _supersede_idle_fanout(services, event, current, token):
            continue  # the fan-out or hand-over gave its lease back: take it now
        if services.clock() + pause > deadline:
            raise ObjectBusyError(f"{event.owner} is being processed by another event; retry later")
        services.sleep(pause)
        pause = min(pause * 2, 5.0)


def _supersede_idle_fanout(services: Services, event: ObjectEvent, current: ObjectState, token: str) -> bool:
    """Take the lease back from a fan-out (or a continuation) that no worker is writing for: its workers
    failed and left, died past their deadlines, or have not started (tasks queued, in the range work
    DLQ, or never sent). Waiting for its lease to expire could outlast this event's retries; and safe it
    is, since every write of a fan-out comes from a registered worker (range_ingest.py). Its later tasks
    find the lease gone and stop, its partial work is never committed, and this event cleans as after
    any interrupted attempt (the state stays dirty). A live worker instead sees a newer event's
    announcement within SUPERSEDE_CHECK_EVERY records, stops, and the last one out gives the lease back.
    Who may: a strictly newer event, or a Lambda retry of the very attempt that handed over (`token`):
    its hand-over may never have been sent (the attempt died sending it), and nobody else would go on."""
    fanout = current.fanout_token
    if fanout is None or current.lease_token != fanout:
        return False  # no fan-out holds the object (its coordinator may still be counting lines)
    if fanout != token and (current.writer_sequencer is None or current.writer_sequencer >= event.sequencer):
        return False  # another delivery or a replay of the fan-out's own event: the fan-out commits it
    active, gone = current.other_writers(None, services.clock())
    if active:
        return False
    return services.store.abandon_fanout(event.owner, fanout, None, gone=gone)


@contextmanager
def holding(services: Services, owner: str, lease: Lease) -> Iterator[Lease]:
    """The block runs under `lease`; if it raises anything, the lease is given back marked dirty before
    the exception propagates. (If that fails too, the original failure still surfaces, with a note:
    an unreleased lease expires by itself.) A block that completes must commit or release itself."""
    try:
        yield lease
    except BaseException as failure:
        try:
            services.store.release(owner, lease.token, dirty=True)
        except Exception as release_error:
            failure.add_note(f"releasing the lease of {owner} failed too: {release_error!r}")
        raise


def release_unchanged(services: Services, owner: str, lease: Lease) -> None:
    """Give the lease back without having written anything: the object's state is as it was."""
    services.store.release(owner, lease.token, dirty=lease.prior.dirty)


class OutOfTime(Exception):  # control flow, not an error
    """The invocation is about to end: the attempt checkpointed at `position` and hands the rest of
    the object over to a continuation (fan_out.continue_elsewhere), keeping its lease."""

    def __init__(self, position: int, *, removed: int = 0) -> None:
        super().__init__(f"removed {removed} items" if removed else f"checkpointed at position {position}")
        self.position = position
        self.removed = removed  # a removal (mirror_object.remove_everything) counts what it deleted


class Superseded(Exception):  # control flow, not an error
    """A newer event of the same object is waiting: stop writing, it will finish the job."""


def run_under_lease(
    services: Services, event: ObjectEvent, lease: Lease, work: Callable[[], Outcome]
) -> Outcome:
    """Run `work` holding `lease`: it commits or releases; on any failure the lease goes back dirty.
    A `Superseded` writer becomes the SUPERSEDED outcome (the newer event redoes everything)."""
    try:
        with holding(services, event.owner, lease):
            return work()
    except Superseded:
        return Outcome(Status.SUPERSEDED, event.owner, detail="a newer event took over")
