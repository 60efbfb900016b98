"""Property: whatever the duplication, order or replay of events, the table ends equal to the records of
the bucket's final contents (issue 3's promise), on a versioned and on an unversioned bucket, also when
versions are permanently deleted (the current one, which makes an older version current again, or a
noncurrent one). JSON Lines objects above a small threshold are fanned out (issue 12): their range tasks
are delivered like events (late, out of order, twice), and any delivery may break midway, after which
it is delivered again; every two records are a checkpoint, so a retried ingest resumes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from functions.core.domain.object_state import CLOCK_MARGIN, TransientStoreError
from functions.core.domain.range_task import RangeTask
from functions.core.use_cases import version_writer
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.ports import FanoutPolicy, Services
from functions.core.use_cases.range_ingest import ingest_range
from tests.fuzzing import examples

from ..conftest import BUCKET, REGION, REJECTS, World, create_table, parse
from ..use_cases.test_fan_out import BreakingReader, DroppedConnection, ListQueue

# Objects above this many bytes are fanned out (a record line is 9 to 20 bytes): 1 to 4 ranges.
FANOUT_THRESHOLD = 24
CHECKPOINT_EVERY = 2

KEYS = ["data/a.jsonl", "data/b c+d=é.ndjson", "data/e.json"]

record = st.fixed_dictionaries({"n": st.integers(0, 9)}, optional={"s": st.sampled_from(["x", "é", ""])})


@dataclass(frozen=True)
class Put:
    key: str
    lines: tuple[Any, ...]  # a dict is a record; None is a line that is not JSON (rejected)


@dataclass(frozen=True)
class Delete:
    key: str


@dataclass(frozen=True)
class DeleteCurrentVersion:
    """DeleteObject with the current VersionId (an object version or a delete marker)."""

    key: str


@dataclass(frozen=True)
class DeleteNoncurrentVersion:
    """DeleteObject with an older VersionId (or the noncurrent-version lifecycle rule)."""

    key: str
    pick: int  # which noncurrent version, modulo how many there are


# A key's versions, oldest first: (version id, the Put, or None for a delete marker).
Versions = list[tuple[str, Put | None]]


def puts(keys: list[str]) -> st.SearchStrategy[Put]:
    return st.builds(
        Put, st.sampled_from(keys), st.lists(st.one_of(record, record, st.none()), max_size=5).map(tuple)
    )


def operations(keys: list[str]) -> st.SearchStrategy[Any]:
    key = st.sampled_from(keys)
    return st.one_of(
        puts(keys),
        st.builds(Delete, key),
        st.builds(DeleteCurrentVersion, key),
        st.builds(DeleteNoncurrentVersion, key, st.integers(0, 9)),
    )


# One key is drawn more often, so overwrites of the same object (the interesting case) are common.
MIXED_KEYS = [KEYS[0], *KEYS]


def body(op: Put) -> str:
    if op.key.endswith(".json"):
        return json.dumps([line if line is not None else "not an object" for line in op.lines])
    return "".join(("oops" if line is None else json.dumps(line)) + "\n" for line in op.lines)


def expected_table(bucket: dict[str, Versions]) -> dict[tuple[str, str], Any]:
    current = [versions[-1][1] for versions in bucket.values() if versions]
    return {
        (op.key, f"{position:012d}"): line
        for op in current
        if op is not None
        for position, line in enumerate(op.lines, start=1)
        if line is not None
    }


@pytest.fixture
def emulator(aws_env: None) -> Iterator[tuple[Any, Any, Any]]:
    """One moto instance and one pair of clients for all examples (creating them dominates the cost);
    each example starts from `reset()` state."""
    mock = mock_aws()
    mock.start()
    try:
        yield mock, boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
    finally:
        mock.stop()


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
@settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_table_converges_to_the_bucket_contents(
    emulator: tuple[Any, Any, Any], versioned: bool, data: st.DataObject
) -> None:
    converges(emulator, versioned, data, st.lists(operations(MIXED_KEYS), min_size=1, max_size=10))


@settings(
    max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_table_follows_the_version_history_of_one_key(
    emulator: tuple[Any, Any, Any], data: st.DataObject
) -> None:
    """Version deletions only matter within one key's history: one key, a few versions first, then any
    operations, so that deleting the top of a stack of versions (or an older one) is common."""
    history = st.tuples(
        st.lists(puts(KEYS[:1]), min_size=2, max_size=4), st.lists(operations(KEYS[:1]), max_size=3)
    )
    converges(emulator, True, data, history.map(lambda parts: [*parts[0], *parts[1]]))


def converges(
    emulator: tuple[Any, Any, Any],
    versioned: bool,
    data: st.DataObject,
    history: st.SearchStrategy[list[Any]],
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(version_writer, "CHECKPOINT_EVERY", CHECKPOINT_EVERY)
        _converges(emulator, versioned, data, history)


def _converges(
    emulator: tuple[Any, Any, Any],
    versioned: bool,
    data: st.DataObject,
    history: st.SearchStrategy[list[Any]],
) -> None:
    mock, s3, dynamodb = emulator
    mock.reset()
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=REJECTS)
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    create_table(dynamodb)
    world = World(s3=s3, dynamodb=dynamodb, versioned=versioned)
    queue, reader = ListQueue(), BreakingReader(s3)
    services = world.services(objects=reader, fanout=FanoutPolicy(queue, FANOUT_THRESHOLD))
    events: list[dict[str, Any]] = []
    undelivered: list[int] = []
    bucket: dict[str, Versions] = {name: [] for name in KEYS}

    def attempt(work: Any, *, may_break: bool = True) -> bool:
        """One delivery (to ingest, delete-sync or a range worker); False if it failed (retried later)."""
        if may_break and data.draw(st.booleans(), label="breaks midway"):
            reader.after = data.draw(st.integers(0, 60), label="bytes read before the break")
        try:
            work()
        except (DroppedConnection, TransientStoreError):  # Lambda / SQS deliver it again later
            return False
        finally:
            reader.after = None
        return True

    def deliver_some() -> None:
        # EventBridge delivers late, out of order, and sometimes more than once; so does SQS.
        for _ in range(data.draw(st.integers(0, len(undelivered) + len(queue.bodies)), label="deliveries")):
            if bool(queue.bodies) and data.draw(st.booleans(), label="a range task"):
                body = data.draw(st.sampled_from(queue.bodies), label="task")
                if attempt(
                    lambda body=body: ingest_range(services, RangeTask.from_json(body))
                ) and not data.draw(st.booleans(), label="task delivered again later"):
                    queue.bodies.remove(body)
                continue
            if not undelivered:
                continue
            index = data.draw(st.sampled_from(undelivered), label="event")
            if attempt(lambda index=index: deliver(services, events[index])) and not data.draw(
                st.booleans(), label="delivered again later"
            ):
                undelivered.remove(index)

    def perform(op: Any) -> dict[str, Any] | None:
        """Apply `op` to the bucket and its model; the event S3 publishes, if any."""
        versions = bucket[op.key]
        if isinstance(op, Put):
            event = world.put(op.key, body(op))
            if not versioned:
                versions.clear()
            versions.append((event["detail"]["object"].get("version-id", "null"), op))
            return event
        if isinstance(op, Delete) or (isinstance(op, DeleteCurrentVersion) and not versioned):
            event = world.delete(op.key)
            if not versioned:
                versions.clear()
            elif "version-id" in event["detail"]["object"]:  # moto adds no marker to an absent key
                versions.append((event["detail"]["object"]["version-id"], None))
            return event
        if isinstance(op, DeleteCurrentVersion) and versions:
            version_id, _ = versions.pop()
            return world.delete_version(op.key, version_id)
        if isinstance(op, DeleteNoncurrentVersion) and versioned and len(versions) > 1:
            version_id, _ = versions.pop(op.pick % (len(versions) - 1))
            return world.delete_version(op.key, version_id, reason="Lifecycle Expiration")
        return None  # nothing to delete: S3 publishes nothing

    # Given a bucket going through puts, overwrites and deletes while their events are being delivered
    for op in data.draw(history, label="operations"):
        event = perform(op)
        if event is None:
            continue
        events.append(event)
        undelivered.append(len(events) - 1)
        deliver_some()

    # When every event has arrived at least once and an archive replays some of them days later
    remaining = [events[i] for i in data.draw(st.permutations(undelivered), label="remaining deliveries")]
    drain(world, services, queue, remaining)
    replays = st.lists(st.sampled_from(range(len(events))), max_size=3) if events else st.just([])
    late = [
        {**events[index], "replay-name": "replay-days-later"} for index in data.draw(replays, label="replays")
    ]
    drain(world, services, queue, late)

    # Then the table holds exactly the records of the objects in the bucket
    assert world.records() == expected_table(bucket)


def drain(world: World, services: Services, queue: ListQueue, events: list[dict[str, Any]]) -> None:
    """Deliver `events` in order and every queued range task, retrying what fails as Lambda and SQS
    would; when nothing can proceed (a broken range worker stays registered until its deadline), time
    passes beyond every lease and deadline, and the tasks are delivered first."""
    events = list(events)
    for _ in range(40):
        if not events and not queue.bodies:
            return
        progressed = False
        for body in list(queue.bodies):
            try:
                ingest_range(services, RangeTask.from_json(body))
            except TransientStoreError:
                continue
            queue.bodies.remove(body)
            progressed = True
        while events:
            try:
                deliver(services, events[0])
            except TransientStoreError:
                break
            events.pop(0)
            progressed = True
        if not progressed:
            world.now += services.lease.lease_seconds + CLOCK_MARGIN + 1
    raise AssertionError(f"no progress: {len(events)} events and {len(queue.bodies)} range tasks left")


def deliver(services: Any, event: dict[str, Any]) -> None:
    object_event = parse(event)
    if object_event.is_created:
        ingest_object(services, object_event)
    else:
        delete_object(services, object_event)
