"""Property: whatever the duplication, order or replay of events, the table ends equal to the records of
the bucket's final contents (issue 3's promise), on a versioned and on an unversioned bucket."""

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

from functions.core.delete_sync import delete_object
from functions.core.ingest import ingest_object

from .conftest import BUCKET, REGION, REJECTS, World, create_table, parse

KEYS = ["data/a.jsonl", "data/b c+d=é.ndjson", "data/e.json"]

record = st.fixed_dictionaries({"n": st.integers(0, 9)}, optional={"s": st.sampled_from(["x", "é", ""])})


@dataclass(frozen=True)
class Put:
    key: str
    lines: tuple[Any, ...]  # a dict is a record; None is a line that is not JSON (rejected)


@dataclass(frozen=True)
class Delete:
    key: str


# One key is drawn more often, so overwrites of the same object (the interesting case) are common.
key = st.sampled_from([KEYS[0], *KEYS])
operation = st.one_of(
    st.builds(Put, key, st.lists(st.one_of(record, record, st.none()), max_size=5).map(tuple)),
    st.builds(Delete, key),
)


def body(op: Put) -> str:
    if op.key.endswith(".json"):
        return json.dumps([line if line is not None else "not an object" for line in op.lines])
    return "".join(("oops" if line is None else json.dumps(line)) + "\n" for line in op.lines)


def expected_table(final: dict[str, Put]) -> dict[tuple[str, str], Any]:
    return {
        (op.key, f"{position:012d}"): line
        for op in final.values()
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
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_table_converges_to_the_bucket_contents(
    emulator: tuple[Any, Any, Any], versioned: bool, data: st.DataObject
) -> None:
    mock, s3, dynamodb = emulator
    mock.reset()
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=REJECTS)
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    create_table(dynamodb)
    world = World(s3=s3, dynamodb=dynamodb, versioned=versioned)
    services = world.services()
    events: list[dict[str, Any]] = []
    undelivered: list[int] = []
    final: dict[str, Put] = {}

    def deliver_some() -> None:
        # EventBridge delivers late, out of order, and sometimes more than once.
        for _ in range(data.draw(st.integers(0, len(undelivered)), label="deliveries now")):
            index = data.draw(st.sampled_from(undelivered), label="event")
            deliver(services, events[index])
            if not data.draw(st.booleans(), label="delivered again later"):
                undelivered.remove(index)

    # Given a bucket going through puts, overwrites and deletes while their events are being delivered
    for op in data.draw(st.lists(operation, min_size=1, max_size=10), label="operations"):
        if isinstance(op, Put):
            events.append(world.put(op.key, body(op)))
            final[op.key] = op
        else:
            events.append(world.delete(op.key))
            final.pop(op.key, None)
        undelivered.append(len(events) - 1)
        deliver_some()

    # When every event has arrived at least once and an archive replays some of them days later
    for index in data.draw(st.permutations(undelivered), label="remaining deliveries"):
        deliver(services, events[index])
    for index in data.draw(st.lists(st.integers(0, len(events) - 1), max_size=3), label="replays"):
        deliver(services, {**events[index], "replay-name": "replay-days-later"})

    # Then the table holds exactly the records of the objects in the bucket
    assert world.records() == expected_table(final)


def deliver(services: Any, event: dict[str, Any]) -> None:
    object_event = parse(event)
    if object_event.is_created:
        ingest_object(services, object_event)
    else:
        delete_object(services, object_event)
