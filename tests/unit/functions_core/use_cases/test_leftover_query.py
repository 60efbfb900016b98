"""The leftovers Query runs only when older position-keyed items can exist beyond the new version's end."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from functions.core.domain.object_state import Acquired
from functions.core.domain.table_layout import SHARD_COUNT, record_key
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object

from ..conftest import World, parse

KEY = "data/a.jsonl"


def jsonl(*records: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def count_operations(world: World) -> Counter[str]:
    """DynamoDB operations as they leave botocore (the real client the store uses, retries included)."""
    sent: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        sent[model.name] += 1

    world.dynamodb.meta.events.register("before-call.dynamodb", record)
    return sent


def test_a_first_upload_sends_no_query(world: World) -> None:
    sent = count_operations(world)

    outcome = ingest_object(world.services(), parse(world.put(KEY, jsonl({"n": 1}, {"n": 2}))))

    assert outcome.status == "ingested"
    assert sent["Query"] == 0
    # The version guard (lease + commit) and one batch write, nothing else.
    assert sent == Counter({"UpdateItem": 2, "BatchWriteItem": 1})


def test_an_overwrite_as_long_as_the_previous_version_sends_no_query(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put(KEY, jsonl({"v": 1}, {"v": 1}))))
    sent = count_operations(world)

    ingest_object(services, parse(world.put(KEY, jsonl({"v": 2}, {"v": 2}, {"v": 2}))))

    assert sent["Query"] == 0
    assert world.records() == {(KEY, f"{p:012d}"): {"v": 2} for p in (1, 2, 3)}


def test_a_shorter_overwrite_queries_and_removes_the_previous_versions_tail(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put(KEY, jsonl({"v": 1}, {"v": 1}, {"v": 1}))))
    sent = count_operations(world)

    outcome = ingest_object(services, parse(world.put(KEY, jsonl({"v": 2}))))

    assert sent["Query"] == 1
    assert outcome.items_removed == 2
    assert world.records() == {(KEY, "000000000001"): {"v": 2}}


def test_after_a_crashed_first_attempt_the_query_removes_what_it_wrote(world: World) -> None:
    """No commit ever happened (last_position 0), but the dirty state says items may exist anywhere."""
    services = world.services()
    crashed = parse(world.put(KEY, jsonl({"v": 1}, {"v": 1}, {"v": 1})))
    acquired = services.store.acquire(
        crashed.owner, crashed.sequencer, "crashed", now=services.clock(), lease_seconds=300, natural=False
    )
    assert isinstance(acquired, Acquired)
    writer = services.store.writer()
    for position in (1, 2, 3):
        writer.put(
            {
                **record_key(KEY, position),
                "owner": {"S": crashed.owner},
                "sequencer": {"S": crashed.sequencer},
                "data": {"M": {"v": {"N": "1"}}},
            }
        )
    writer.flush()
    # The attempt failed and gave its lease back marked dirty, as release_after_failure does.
    services.store.release(crashed.owner, "crashed", dirty=True)
    sent = count_operations(world)

    outcome = ingest_object(services, parse(world.put(KEY, jsonl({"v": 2}))))

    assert outcome.status == "ingested"
    # After an interrupted attempt its reach is unknown: every shard partition is queried, plus the
    # layout-1 partition (the state item records no layout yet) and the owner index.
    assert sent["Query"] == SHARD_COUNT + 2
    assert world.records() == {(KEY, "000000000001"): {"v": 2}}


def test_after_a_delete_a_new_upload_sends_no_query(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put(KEY, jsonl({"v": 1}, {"v": 1}, {"v": 1}))))
    delete_object(services, parse(world.delete(KEY)))
    sent = count_operations(world)

    ingest_object(services, parse(world.put(KEY, jsonl({"v": 2}))))

    assert sent["Query"] == 0
    assert world.records() == {(KEY, "000000000001"): {"v": 2}}
