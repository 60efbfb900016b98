"""The reconcile repair: it goes through the object's lease and the shared write path, reuses the
committed sequencer (or the lowest one), and so never blocks a real later event."""

from __future__ import annotations

import json

from functions.core.domain.object_state import ObjectState
from functions.core.domain.table_layout import record_key, state_key
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.repair import LOWEST_SEQUENCER, repair_object

from ..conftest import BUCKET, TABLE, World, parse

KEY = "data/r.jsonl"


def jsonl(*records: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def state(world: World) -> ObjectState:
    item = world.dynamodb.get_item(TableName=TABLE, Key=state_key(f"{BUCKET}/{KEY}"), ConsistentRead=True)
    return ObjectState.from_item(item.get("Item"))


def test_repair_rewrites_deleted_items_under_the_committed_sequencer(world: World) -> None:
    services = world.services()
    event = parse(world.put(KEY, jsonl({"v": 1}, {"v": 2})))
    ingest_object(services, event)
    world.dynamodb.delete_item(TableName=TABLE, Key=record_key(KEY, 2))

    outcome = repair_object(services, BUCKET, KEY, committed=state(world))

    assert outcome.status == "restored"
    assert world.records() == {(KEY, "000000000001"): {"v": 1}, (KEY, "000000000002"): {"v": 2}}
    after = state(world)
    assert (after.sequencer, after.dirty, after.lease_token) == (event.sequencer, False, None)


def test_repair_without_a_state_item_uses_the_lowest_sequencer_and_a_later_event_still_applies(
    world: World,
) -> None:
    services = world.services()
    world.put(KEY, jsonl({"v": 1}))

    outcome = repair_object(services, BUCKET, KEY, committed=ObjectState())

    assert outcome.status == "restored"
    assert state(world).sequencer == LOWEST_SEQUENCER
    later = ingest_object(services, parse(world.put(KEY, jsonl({"v": 9}))))
    assert later.status == "ingested"
    assert world.records() == {(KEY, "000000000001"): {"v": 9}}


def test_repair_of_an_absent_object_removes_its_items_and_leaves_a_tombstone(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put(KEY, jsonl({"v": 1}))))
    committed = state(world)
    for version in world.s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)["Versions"]:
        world.s3.delete_object(Bucket=BUCKET, Key=KEY, VersionId=version["VersionId"])

    outcome = repair_object(services, BUCKET, KEY, committed=committed)

    assert outcome.status == "deleted"
    assert world.records() == {}
    assert (state(world).status, state(world).sequencer) == ("deleted", committed.sequencer)


def test_repair_yields_to_a_newer_announced_event(world: World) -> None:
    services = world.services()
    ingest_object(services, parse(world.put(KEY, jsonl({"v": 1}))))
    committed = state(world)
    services.store.announce(f"{BUCKET}/{KEY}", "F" * 64)

    outcome = repair_object(services, BUCKET, KEY, committed=committed)

    assert outcome.status == "stale"
