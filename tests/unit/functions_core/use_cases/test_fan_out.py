"""Fan-out and resume on the moto emulator: whatever order, duplication or failure the range tasks go
through, a newer version arriving mid-fan-out, or an attempt resuming after a checkpoint, the table, the
state item and the rejects report end exactly as one single-invocation ingest of the final object leaves
them (docs/data-model.md; design: fan_out.py, range_ingest.py, version_writer.py)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import IO, Any

import pytest

from functions.core.adapters.s3_object_reader import S3ObjectReader
from functions.core.domain.object_state import ObjectState
from functions.core.domain.range_task import RangeTask
from functions.core.domain.table_layout import STATE_PREFIX, state_key
from functions.core.use_cases import version_writer
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.object_lease import ObjectBusyError
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import FanoutPolicy, Services
from functions.core.use_cases.range_ingest import FanoutPendingError, ingest_range

from ..conftest import BUCKET, REJECTS, TABLE, World, parse

KEY = "data/big.jsonl"
THRESHOLD = 32  # bytes per range: the object below makes 8 or more ranges
PARTS_PREFIX = "fanout-parts/"


class ListQueue:
    """The range work queue as a list: the test decides when, in which order and how often a task runs."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: list[str]) -> None:
        self.bodies.extend(bodies)

    def take(self) -> list[RangeTask]:
        tasks = [RangeTask.from_json(body) for body in self.bodies]
        self.bodies.clear()
        return tasks


class DroppedConnection(ConnectionError):
    """The simulated failure of a read from S3 in the middle of a stream."""


class BreakingStream:
    """An S3 body that breaks after `after` bytes (then `on_break` runs instead, if given: a pause)."""

    def __init__(self, body: IO[bytes], after: int, on_break: Callable[[], None] | None) -> None:
        self._body = body
        self._left = after
        self._on_break = on_break

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            if self._on_break is None:
                raise DroppedConnection("simulated: the connection dropped mid-stream")
            on_break, self._on_break = self._on_break, None
            on_break()  # another worker (or event) runs while this one is between two reads
            return self._body.read(size)
        data = self._body.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> BreakingStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class BreakingReader(S3ObjectReader):
    """`S3ObjectReader` whose next stream opened breaks after `after` bytes (once)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.after: int | None = None
        self.on_break: Callable[[], None] | None = None

    def _wrap(self, body: IO[bytes] | None) -> IO[bytes] | None:
        if body is None or self.after is None:
            return body
        after, self.after = self.after, None
        on_break, self.on_break = self.on_break, None
        return BreakingStream(body, after, on_break)  # type: ignore[return-value]

    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> IO[bytes] | None:
        return self._wrap(super().open(bucket, key, version_id=version_id, etag=etag))

    def open_range(
        self, bucket: str, key: str, *, version_id: str | None, etag: str | None, start: int, end: int | None
    ) -> IO[bytes] | None:
        body = super().open_range(bucket, key, version_id=version_id, etag=etag, start=start, end=end)
        # The coordinator's newline counts read bounded segments; only a range worker reads to the end.
        return self._wrap(body) if end is None else body


def awkward_object() -> bytes:
    """JSON Lines with what a byte split can get wrong: blank and whitespace-only lines, lines that are
    not JSON or not objects, a non-ASCII record, a line that starts exactly at a range boundary, a line
    long enough that a whole range holds no line start, and no newline after the last line."""
    head = [b'{"n": 1}', b"", b'{"n": 2, "s": "\xc3\xa9t\xc3\xa9"}', b"not json", b"[1, 2]"]
    prefix = sum(len(line) + 1 for line in head)
    # A record whose end puts the next line's first byte at a multiple of THRESHOLD.
    frame = len(b'{"pad": ""}\n')
    pad = b'{"pad": "' + b"x" * ((-(prefix + frame)) % THRESHOLD + THRESHOLD) + b'"}'
    tail = [
        b'{"n": 3}',  # starts at a range boundary
        b"   ",
        b'{"long": "' + b"y" * (4 * THRESHOLD) + b'"}',
        b'{"n": 4}',
        b"",
        b'{"n": 5',
        b"7",
        b'{"n": 6}',
    ]
    body = b"\n".join([*head, pad, *tail])
    starts = [0] + [index + 1 for index, byte in enumerate(body) if byte == ord("\n")]
    assert (prefix + len(pad) + 1) % THRESHOLD == 0
    assert prefix + len(pad) + 1 in starts
    assert any(not any(k <= s < k + THRESHOLD for s in starts) for k in range(0, len(body), THRESHOLD))
    assert not body.endswith(b"\n")
    assert len(body) > 8 * THRESHOLD
    return body


def many_records(count: int, *, tag: str = "v1") -> bytes:
    lines = [f'{{"n": {n}, "tag": "{tag}"}}' if n % 7 else "oops" for n in range(1, count + 1)]
    return ("\n".join(lines) + "\n").encode()


# --- what a run leaves, and the reference it must equal -----------------------------------------
def snapshot(world: World, *, parts: bool = True) -> dict[str, Any]:
    """The record items (every attribute but the ingestion time), the state item's verdict and every
    object of the rejects bucket (fan-out parts included unless `parts` is False: a fan-out that
    commits leaves none; one that a newer event took over leaves its parts behind, see the report)."""
    records: dict[tuple[str, str], dict[str, Any]] = {}
    state: dict[str, Any] = {}
    for page in world.dynamodb.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
        for item in page["Items"]:
            if item["pk"]["S"].startswith(STATE_PREFIX):
                fields = (
                    "sequencer",
                    "status",
                    "version_id",
                    "record_count",
                    "rejected_count",
                    "last_position",
                )
                state = {name: item.get(name) for name in fields}
                state["attempt"] = sorted(name for name in item if name.startswith(("fanout", "progress")))
                state["leased"] = "lease_token" in item
                continue
            records[item["pk"]["S"], item["sk"]["S"]] = {k: v for k, v in item.items() if k != "ingested_at"}
    reports = {
        key: world.report(key) for key in world.report_keys() if parts or not key.startswith(PARTS_PREFIX)
    }
    return {"records": records, "state": state, "reports": reports}


def wipe(world: World) -> None:
    """An empty table and rejects bucket (the reference run starts from nothing)."""
    for page in world.dynamodb.get_paginator("scan").paginate(TableName=TABLE):
        for item in page["Items"]:
            world.dynamodb.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})
    for key in world.report_keys():
        world.s3.delete_object(Bucket=REJECTS, Key=key)


def single_invocation(world: World, event: dict[str, Any]) -> dict[str, Any]:
    """What one ingest of `event` without fan-out leaves in an empty table (the run before is wiped)."""
    wipe(world)
    outcome = ingest_object(world.services(), parse(event))
    assert outcome.status == Status.INGESTED
    return snapshot(world)


@pytest.fixture
def fanned(world: World, queue: ListQueue, reader: BreakingReader) -> Services:
    return world.services(objects=reader, fanout=FanoutPolicy(queue=queue, threshold_bytes=THRESHOLD))


def fan_out(services: Services, queue: ListQueue, event: dict[str, Any]) -> list[RangeTask]:
    outcome = ingest_object(services, parse(event))
    assert outcome.status == Status.FANNED_OUT, outcome
    return queue.take()


def run(services: Services, tasks: list[RangeTask]) -> list[Outcome]:
    return [ingest_range(services, task) for task in tasks]


def committed(outcomes: list[Outcome]) -> int:
    return sum("object committed" in outcome.detail for outcome in outcomes)


def test_the_object_splits_into_at_least_eight_ranges(
    world: World, fanned: Services, queue: ListQueue
) -> None:
    tasks = fan_out(fanned, queue, world.put(KEY, awkward_object()))

    assert len(tasks) >= 8
    assert [task.byte_range.index for task in tasks] == list(range(len(tasks)))
    assert not world.records()  # nothing is written before a range worker runs


def _shuffled_with_duplicates(tasks: list[RangeTask]) -> list[RangeTask]:
    twice = tasks + tasks[::2]
    random.Random(12).shuffle(twice)
    return twice


ORDERS: dict[str, Callable[[list[RangeTask]], list[RangeTask]]] = {
    "in order": lambda tasks: tasks,
    "reversed": lambda tasks: tasks[::-1],
    "each twice in a row": lambda tasks: [task for task in tasks for _ in (1, 2)],
    "shuffled, some delivered twice": _shuffled_with_duplicates,
}


@pytest.mark.parametrize("order", ORDERS)
def test_ranges_in_any_order_and_duplicated_leave_what_one_invocation_leaves(
    world: World, fanned: Services, queue: ListQueue, order: str
) -> None:
    event = world.put(KEY, awkward_object())
    tasks = fan_out(fanned, queue, event)

    outcomes = run(fanned, ORDERS[order](tasks))
    fanned_out = snapshot(world)
    # Deliveries after the commit (SQS delivers at least once) are dropped and change nothing.
    late = run(fanned, tasks[:2])

    assert committed(outcomes) == 1
    assert {outcome.status for outcome in late} == {Status.STALE}
    assert snapshot(world) == fanned_out
    assert fanned_out == single_invocation(world, event)
    assert fanned_out["state"]["rejected_count"] == {"N": "4"}  # the awkward lines were all seen


@pytest.mark.parametrize("crashing", ["first", "middle", "last"])
def test_a_range_that_crashes_midway_and_is_delivered_again_leaves_the_same_table(
    world: World, fanned: Services, queue: ListQueue, reader: BreakingReader, crashing: str
) -> None:
    event = world.put(KEY, awkward_object())
    tasks = fan_out(fanned, queue, event)
    # The range owning the long line (`middle`) breaks inside it; the last one would commit the object.
    long_line = awkward_object().index(b'{"long"') // THRESHOLD
    index = {"first": 0, "middle": long_line, "last": len(tasks) - 1}[crashing]
    others = [task for task in tasks if task.byte_range.index != index]

    run(fanned, others[: len(others) // 2])
    reader.after = 20
    with pytest.raises(DroppedConnection):
        ingest_range(fanned, tasks[index])
    assert ObjectState.from_item(_state(world)).lease_token == tasks[index].token  # a failed range keeps it
    outcomes = run(fanned, [tasks[index], *others[len(others) // 2 :]])  # SQS delivers it again

    assert committed(outcomes) == 1
    assert snapshot(world) == single_invocation(world, event)


def test_a_finalizer_that_fails_gives_up_its_claim_and_the_fan_out_is_committed_once(
    world: World, fanned: Services, queue: ListQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = world.put(KEY, awkward_object())
    tasks = fan_out(fanned, queue, event)
    run(fanned, tasks[:-1])
    reports, failed = fanned.reports, list[str]()

    def get_once_failing(key: str) -> bytes | None:
        if not failed:
            failed.append(key)
            raise DroppedConnection("simulated: reading a range's rejects failed")
        return type(reports).get(reports, key)

    monkeypatch.setattr(reports, "get", get_once_failing)
    with pytest.raises(DroppedConnection):
        ingest_range(fanned, tasks[-1])  # it leaves, giving up its claim: nothing of it is in flight
    others = run(fanned, tasks[:2])  # a duplicate of a finished range, leaving last, commits
    retried = run(fanned, [tasks[-1]])  # the failed task's retry finds the object committed

    assert committed(others) + committed(retried) == 1
    assert snapshot(world) == single_invocation(world, event)


@pytest.mark.parametrize("newer", ["small", "fanned out too"])
def test_a_newer_version_mid_fan_out_takes_over_and_wins(
    world: World, fanned: Services, queue: ListQueue, newer: str
) -> None:
    first = world.put(KEY, awkward_object())
    old_tasks = fan_out(fanned, queue, first)
    run(fanned, old_tasks[:3])

    second = world.put(KEY, many_records(1 if newer == "small" else 40, tag="v2"))
    # No worker is writing (the other tasks wait in the queue): the newer event takes the lease at once
    # (object_lease._supersede_idle_fanout; a registered worker is waited for, see the tests below).
    outcome = ingest_object(fanned, parse(second))
    calls = _count_batch_writes(world)
    rest = run(fanned, old_tasks[3:])  # the old fan-out's tasks are dropped without writing
    assert {outcome.status for outcome in rest} == {Status.STALE}
    assert calls == []
    if newer == "small":
        assert outcome.status == Status.INGESTED
    else:
        assert outcome.status == Status.FANNED_OUT
        assert committed(run(fanned, queue.take()[::-1])) == 1
    run(fanned, old_tasks)  # stragglers of the old fan-out change nothing

    assert snapshot(world, parts=False) == single_invocation(world, second)


def test_a_delete_mid_fan_out_takes_over_and_the_table_ends_empty(
    world: World, fanned: Services, queue: ListQueue
) -> None:
    tasks = fan_out(fanned, queue, world.put(KEY, awkward_object()))
    run(fanned, tasks[:4])

    outcome = _delete(fanned, world.delete(KEY))  # no worker is writing: the delete takes over at once
    late = run(fanned, tasks[4:])

    assert outcome.status == Status.DELETED
    assert {outcome.status for outcome in late} == {Status.STALE}
    assert world.records() == {}
    assert snapshot(world, parts=False)["reports"] == {}


# --- the concurrency the atomic-step checkers cannot see ---------------------------------------------
def test_a_sibling_still_writing_when_another_range_gives_the_lease_back_leaves_nothing_behind(
    world: World, fanned: Services, queue: ListQueue, reader: BreakingReader
) -> None:
    tasks = fan_out(fanned, queue, world.put(KEY, awkward_object()))
    deleted = world.delete(KEY)

    def meanwhile() -> None:
        # While range 0's worker is between two reads (registered as writing, nothing sent yet):
        with pytest.raises(ObjectBusyError):
            _delete(fanned, deleted)  # the delete finds the fan-out's lease and announces itself
        assert ingest_range(fanned, tasks[1]).status == Status.SUPERSEDED  # a sibling stops and leaves
        with pytest.raises(ObjectBusyError):
            _delete(fanned, deleted)  # range 0 may still write: nobody gives the lease back yet

    reader.after, reader.on_break = 1, meanwhile
    # Range 0's worker goes on writing the version that was deleted, leaves last, gives the lease back.
    assert ingest_range(fanned, tasks[0]).status == Status.SUPERSEDED
    assert _delete(fanned, deleted).status == Status.DELETED  # the delete's retry commits

    assert world.records() == {}


def test_a_duplicate_range_delivery_still_writing_after_the_commit_leaves_nothing_behind(
    world: World, fanned: Services, queue: ListQueue, reader: BreakingReader
) -> None:
    tasks = fan_out(fanned, queue, world.put(KEY, awkward_object()))
    run(fanned, tasks[1:])
    deleted = world.delete(KEY)

    def meanwhile() -> None:
        # The other delivery of range 0 writes it too, but may not commit while this one writes.
        with pytest.raises(FanoutPendingError):
            ingest_range(fanned, tasks[0])
        with pytest.raises(ObjectBusyError):
            _delete(fanned, deleted)

    reader.after, reader.on_break = 1, meanwhile
    ingest_range(fanned, tasks[0])  # leaves last: the delete is waiting, so it gives the lease back
    assert _delete(fanned, deleted).status == Status.DELETED

    assert world.records() == {}


def test_an_older_event_after_the_lease_of_a_newer_fan_out_expired_does_not_win(
    world: World, fanned: Services, queue: ListQueue
) -> None:
    first = world.put(KEY, awkward_object())
    second = world.put(KEY, many_records(40, tag="v2"))
    newer_tasks = fan_out(fanned, queue, second)  # the newer event is delivered first and fans out
    world.now += fanned.lease.lease_seconds + 1  # its tasks wait in the queue longer than the lease

    older = ingest_object(fanned, parse(first))  # the older event's (late) delivery takes the lease
    run(fanned, queue.take())
    late = run(fanned, newer_tasks)  # the newer fan-out's tasks arrive at last

    assert older.status == Status.STALE or committed(late) == 1
    assert snapshot(world, parts=False) == single_invocation(world, second)


# --- resume after a checkpoint ---------------------------------------------------------------------------
@pytest.fixture
def checkpoint_every(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(version_writer, "CHECKPOINT_EVERY", 30)
    return 30


def _count_batch_writes(world: World) -> list[int]:
    """PutRequests per BatchWriteItem call from now on (the list grows as calls are made)."""
    calls: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        # The body botocore sends (the writer hands it encoded batches: no items in the parameters).
        requests = json.loads(params["body"])["RequestItems"][TABLE]
        calls.append(sum("PutRequest" in request for request in requests))

    world.dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", count)
    return calls


def _state(world: World) -> dict[str, Any]:
    owner = f"{BUCKET}/{KEY}"
    item = world.dynamodb.get_item(TableName=TABLE, Key=state_key(owner), ConsistentRead=True)["Item"]
    return dict(item)


def _crash_after_checkpoint(
    world: World, reader: BreakingReader, event: dict[str, Any], services: Services
) -> int:
    """Ingest `event` until its stream breaks after record 75 (checkpoints at 30 and 60 are done)."""
    body = world.s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
    reader.after = len(b"".join(body.splitlines(keepends=True)[:75]))
    with pytest.raises(DroppedConnection):
        ingest_object(services, parse(event))
    return int(_state(world)["progress_position"]["N"])


def test_a_retry_of_the_same_attempt_resumes_after_its_checkpoint(
    world: World, reader: BreakingReader, checkpoint_every: int
) -> None:
    event = world.put(KEY, many_records(120))
    services = world.services(objects=reader, invocation_id="request-1")
    checkpoint = _crash_after_checkpoint(world, reader, event, services)

    puts = _count_batch_writes(world)
    outcome = ingest_object(services, parse(event))  # Lambda retries the invocation: same request id

    assert checkpoint == 60
    records_after_checkpoint = sum(1 for n in range(61, 121) if n % 7)
    assert outcome.status == Status.INGESTED
    assert sum(puts) == records_after_checkpoint
    assert outcome.records_written == sum(1 for n in range(1, 121) if n % 7)
    assert snapshot(world) == single_invocation(world, event)


def test_another_delivery_of_the_same_event_resumes_too(
    world: World, reader: BreakingReader, checkpoint_every: int
) -> None:
    event = world.put(KEY, many_records(120))
    first = world.services(objects=reader, invocation_id="request-1", lease=world.services().lease)
    _crash_after_checkpoint(world, reader, event, first)

    puts = _count_batch_writes(world)
    outcome = ingest_object(world.services(invocation_id="request-2"), parse(event))

    assert outcome.status == Status.INGESTED
    assert sum(puts) == sum(1 for n in range(61, 121) if n % 7)
    assert snapshot(world) == single_invocation(world, event)


def test_another_events_attempt_in_between_prevents_the_resume(
    world: World, reader: BreakingReader, checkpoint_every: int
) -> None:
    first = world.put(KEY, many_records(120))
    services = world.services(objects=reader, invocation_id="request-1")
    _crash_after_checkpoint(world, reader, first, services)
    # A newer version's attempt takes the free lease, overwrites the first positions, and crashes.
    second = world.put(KEY, many_records(120, tag="v2"))
    reader.after = 200
    with pytest.raises(DroppedConnection):
        ingest_object(world.services(objects=reader, invocation_id="request-2"), parse(second))

    puts = _count_batch_writes(world)
    outcome = ingest_object(services, parse(first))  # the first event's retry: it must start over

    assert outcome.status == Status.INGESTED
    assert sum(puts) == sum(1 for n in range(1, 121) if n % 7)
    assert snapshot(world) == single_invocation(world, first)


def test_a_resumed_ingest_rebuilds_the_same_rejects_report(
    world: World, reader: BreakingReader, checkpoint_every: int
) -> None:
    event = world.put(KEY, many_records(120))
    services = world.services(objects=reader, invocation_id="request-1")
    _crash_after_checkpoint(world, reader, event, services)
    ingest_object(services, parse(event))
    resumed = snapshot(world)

    reference = single_invocation(world, event)
    assert resumed["reports"] == reference["reports"]
    assert len(next(iter(resumed["reports"].values()))) == 120 // 7  # positions 7, 14, ... before and after


def _delete(services: Services, event: dict[str, Any]) -> Outcome:
    return delete_object(services, parse(event))
