"""A newer event of an object whose fan-out is stuck (moto): a range failing into the range work DLQ,
workers gone, a worker killed while registered. Each event goes through what Lambda's asynchronous
invocation does with an error (two retries, 1 and 2 minutes later, then the on-failure destination), with
the waits and leases the functions get in Lambda (lambda_services.services_for), on a test clock.

The newer version takes over as soon as no worker of the old fan-out may still be writing; the old
fan-out's partial work is never committed, and its later or redriven tasks stop without writing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from functions.core.domain.object_state import ObjectState
from functions.core.domain.range_task import RangeTask
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.object_lease import ObjectBusyError
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import FanoutPolicy, LeasePolicy, Services
from functions.core.use_cases.range_ingest import ingest_range

from ..conftest import BUCKET, World, parse
from .test_fan_out import (
    KEY,
    THRESHOLD,
    BreakingReader,
    DroppedConnection,
    ListQueue,
    _count_batch_writes,
    _state,
    awkward_object,
    committed,
    many_records,
    single_invocation,
    snapshot,
)

# Lambda developer guide, "How Lambda handles errors and retries with asynchronous invocation": on a
# function error Lambda runs the event "two more times, with a one-minute wait between the first two
# attempts, and two minutes between the second and third attempts".
ASYNC_RETRY_DELAYS = (60.0, 120.0)
# What lambda_services.services_for gives a 300-second ingest or delete-sync invocation (wait 60 s, lease
# 330 s) and a 900-second range worker (lease = its deadline: 930 s).
EVENT_LEASE = LeasePolicy(lease_seconds=330.0, max_wait_seconds=60.0)
WORKER_LEASE = LeasePolicy(lease_seconds=930.0, max_wait_seconds=60.0)
OWNER = f"{BUCKET}/{KEY}"


@pytest.fixture
def events(world: World, queue: ListQueue, reader: BreakingReader) -> Services:
    """Ingest and delete-sync as Lambda runs them (fan-out on)."""
    policy = FanoutPolicy(queue=queue, threshold_bytes=THRESHOLD)
    return world.services(objects=reader, fanout=policy, lease=EVENT_LEASE)


@pytest.fixture
def workers(world: World, queue: ListQueue, reader: BreakingReader) -> Services:
    """The range worker as Lambda runs it."""
    policy = FanoutPolicy(queue=queue, threshold_bytes=THRESHOLD)
    return world.services(objects=reader, fanout=policy, lease=WORKER_LEASE)


ON_FAILURE = "the function's on-failure destination (`eventpipe dlq list`)"


def deliver_async(world: World, handle: Callable[[], Outcome]) -> Status | str:
    """What Lambda's asynchronous invocation of `handle` ends with: the outcome's status, or ON_FAILURE
    when every attempt failed."""
    for delay in (0.0, *ASYNC_RETRY_DELAYS):
        world.now += delay
        try:
            return handle().status
        except ObjectBusyError:
            continue
    return ON_FAILURE


def start(world: World, events: Services, queue: ListQueue) -> list[RangeTask]:
    outcome = ingest_object(events, parse(world.put(KEY, awkward_object())))
    assert outcome.status == Status.FANNED_OUT, outcome
    return queue.take()


def fail(world: World, workers: Services, reader: BreakingReader, task: RangeTask) -> None:
    """One delivery of `task` whose worker raises (SQS receives it again 90 minutes later, or moves it
    to the range work DLQ after its third receive)."""
    reader.after = 20
    with pytest.raises(DroppedConnection):
        ingest_range(workers, task)


def test_a_newer_version_takes_over_a_fan_out_stuck_on_a_failing_range(
    world: World, events: Services, workers: Services, queue: ListQueue, reader: BreakingReader
) -> None:
    tasks = start(world, events, queue)
    [ingest_range(workers, task) for task in tasks[:2]]
    fail(world, workers, reader, tasks[2])  # it leaves at once: nobody is writing any more
    assert ObjectState.from_item(_state(world)).lease_token == tasks[2].token

    second = world.put(KEY, many_records(1, tag="v2"))  # below the threshold: ingested at once
    outcome = deliver_async(world, lambda: ingest_object(events, parse(second)))

    assert outcome == Status.INGESTED
    # The failed task redriven from the DLQ, and the tasks still queued, stop without writing.
    calls = _count_batch_writes(world)
    late = [ingest_range(workers, task) for task in tasks[2:]]
    assert {outcome.status for outcome in late} == {Status.STALE}
    assert calls == []
    assert committed(late) == 0
    assert snapshot(world, parts=False) == single_invocation(world, second)


def test_a_delete_takes_over_a_fan_out_whose_tasks_wait_in_the_dlq(
    world: World, events: Services, workers: Services, queue: ListQueue, reader: BreakingReader
) -> None:
    tasks = start(world, events, queue)
    fail(world, workers, reader, tasks[0])  # its three receives failed: it waits in the range work DLQ
    world.now += 3 * 5400  # three visibility timeouts later: no worker has been seen since

    outcome = deliver_async(world, lambda: delete_object(events, parse(world.delete(KEY))))
    redriven = [ingest_range(workers, task) for task in tasks]  # `eventpipe dlq redrive`, and the rest

    assert outcome == Status.DELETED
    assert {outcome.status for outcome in redriven} == {Status.STALE}
    assert world.records() == {}


def _killed_worker(world: World, workers: Services, task: RangeTask) -> None:
    """A worker that registered for `task` and died without leaving (out of memory, a crashed runtime,
    its timeout): what its invocation leaves in the state item. It may still be writing as far as anyone
    can tell, until the deadline it registered (its invocation's end)."""
    deadline = world.now + workers.lease.lease_seconds
    state = workers.store.join_fanout(
        OWNER, task.token, "killed", index=task.byte_range.index, deadline=deadline
    )
    assert state is not None


def test_a_worker_killed_by_its_timeout_delays_the_newer_version_by_a_minute_at_most(
    world: World, events: Services, workers: Services, queue: ListQueue
) -> None:
    tasks = start(world, events, queue)
    _killed_worker(world, workers, tasks[1])
    world.now += 900  # the range worker's timeout: its registration ends 30 s later (+30 s clock margin)

    second = world.put(KEY, many_records(1, tag="v2"))
    started = world.now
    outcome = deliver_async(world, lambda: ingest_object(events, parse(second)))

    assert outcome == Status.INGESTED
    assert world.now - started <= 60 + ASYNC_RETRY_DELAYS[0] + 5  # at most one retry, a minute later
    assert ingest_range(workers, tasks[1]).status == Status.STALE  # the killed worker's redelivery
    assert snapshot(world, parts=False) == single_invocation(world, second)


def test_a_worker_killed_early_can_outlast_the_newer_events_retries_and_a_redrive_finishes_it(
    world: World, events: Services, workers: Services, queue: ListQueue
) -> None:
    """The limit, documented in docs/operations.md: nobody can tell a worker that died early from one
    still writing before its deadline (up to 15.5 minutes after it started, plus the clock margin);
    the newer event's three attempts span about 6 minutes, then it waits in ingest's failure queue."""
    tasks = start(world, events, queue)
    _killed_worker(world, workers, tasks[1])

    second = world.put(KEY, many_records(1, tag="v2"))
    parsed = parse(second)
    assert deliver_async(world, lambda: ingest_object(events, parsed)) == ON_FAILURE
    assert ObjectState.from_item(_state(world)).pending_sequencer == parsed.sequencer
    world.now += WORKER_LEASE.lease_seconds  # the operator redrives ingest's failure queue later
    redriven = deliver_async(world, lambda: ingest_object(events, parsed))

    assert redriven == Status.INGESTED
    assert snapshot(world, parts=False) == single_invocation(world, second)


def test_a_duplicate_of_the_fan_outs_own_event_does_not_take_it_over(
    world: World, events: Services, workers: Services, queue: ListQueue
) -> None:
    first = world.put(KEY, awkward_object())
    assert ingest_object(replace(events, invocation_id="a"), parse(first)).status == Status.FANNED_OUT
    tasks = queue.take()

    with pytest.raises(ObjectBusyError):  # the same S3 change, delivered twice: the fan-out commits it
        ingest_object(replace(events, invocation_id="b"), parse(first))
    outcomes = [ingest_range(workers, task) for task in tasks]

    assert committed(outcomes) == 1
    assert snapshot(world) == single_invocation(world, first)
