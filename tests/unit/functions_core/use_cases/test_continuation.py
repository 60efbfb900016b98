"""An ingest that runs out of invocation time checkpoints and hands over to a continuation, which
resumes from the checkpoint under the same lease: the table ends exactly as one uninterrupted ingest
leaves it, and the positions before the checkpoint are not written twice. A delete of a large object
(its removal, or the older version it makes current) hands over the same way."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.domain.range_task import RangeTask
from functions.core.use_cases import mirror_object, version_writer
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.object_lease import ObjectBusyError
from functions.core.use_cases.outcome import Outcome, Status
from functions.core.use_cases.ports import FanoutPolicy, Services
from functions.core.use_cases.range_ingest import ingest_range

from ..conftest import STATE_PREFIX, TABLE, World, parse


class ListQueue:
    """The work queue as the range worker sees it: the tasks, in the order they were sent."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: list[str]) -> None:
        self.bodies.extend(bodies)


def puts_sent(world: World) -> Counter[str]:
    """PutRequests and DeleteRequests as they leave botocore (the real client the store uses)."""
    sent: Counter[str] = Counter()

    def record(params: dict[str, Any], **_: Any) -> None:
        # The body botocore sends (the writer hands it encoded batches: no items in the parameters).
        for requests in json.loads(params["body"])["RequestItems"].values():
            sent["put"] += sum("PutRequest" in request for request in requests)
            sent["delete"] += sum("DeleteRequest" in request for request in requests)

    world.dynamodb.meta.events.register("before-call.dynamodb.BatchWriteItem", record)
    return sent


def table_items(world: World) -> dict[tuple[str, str], Any]:
    """Every item but state items, without the attributes that name the attempt that wrote them."""
    found = {}
    for page in world.dynamodb.get_paginator("scan").paginate(TableName=TABLE):
        for item in page["Items"]:
            if not item["pk"]["S"].startswith(STATE_PREFIX):
                found[item["pk"]["S"], item["sk"]["S"]] = {
                    name: value for name, value in item.items() if name != "ingested_at"
                }
    return found


BODY = "".join(
    ("\n" if n % 7 == 0 else "not json\n" if n % 11 == 0 else json.dumps({"n": n}) + "\n")
    for n in range(1, 60)
)


@pytest.mark.parametrize(
    ("key", "body"), [("data/big.jsonl.gz", gzip.compress(BODY.encode())), ("data/big.jsonl", BODY)]
)
def test_a_continuation_resumes_from_the_checkpoint_and_ends_like_one_ingest(
    world: World, monkeypatch: pytest.MonkeyPatch, key: str, body: bytes | str
) -> None:
    monkeypatch.setattr(version_writer, "CHECKPOINT_EVERY", 10)
    queue = ListQueue()
    event = parse(world.put(key, body))
    sent = puts_sent(world)
    # Out of time from the start: the first checkpoint hands over.
    services = world.services(fanout=FanoutPolicy(queue=queue, threshold_bytes=1 << 30), hand_over_at=0.0)

    first = ingest_object(services, event)

    assert first.status == "continued"
    assert len(queue.bodies) == 1
    written_before = sent["put"]
    # The continuation runs in the range worker, which has time: it resumes and commits.
    done = ingest_range(world.services(), RangeTask.from_json(queue.bodies[0]))
    assert done.status == "ingested"
    resumed_writes = sent["put"] - written_before
    continued_table, continued_report = table_items(world), world.report(done.report_key or "")
    state = world.item(STATE_PREFIX + event.owner, "state")

    # The same object ingested in one go, in a fresh table.
    world.dynamodb.delete_table(TableName=TABLE)
    from ..conftest import create_table

    create_table(world.dynamodb)
    sent.clear()
    once = ingest_object(world.services(), event)

    assert once.status == "ingested"
    assert continued_table == table_items(world)
    assert continued_report == world.report(once.report_key or "")
    assert (state["record_count"], state["rejected_count"]) == (once.records_written, once.records_rejected)
    assert "progress_position" not in state
    assert "fanout_token" not in state
    # Nothing before the checkpoint was sent twice: both attempts together sent each record once.
    assert written_before + resumed_writes == sent["put"] == once.records_written
    assert written_before > 0


# --- deletes ---------------------------------------------------------------------------------------
RECORDS = "".join(json.dumps({"n": n}) + "\n" for n in range(1, 61))


def out_of_time(world: World, queue: ListQueue) -> Services:
    """An invocation whose time is up from the start: it hands over at its first check."""
    return world.services(fanout=FanoutPolicy(queue=queue, threshold_bytes=1 << 30), hand_over_at=0.0)


def run_continuations(world: World, queue: ListQueue, *, short_of_time: int) -> list[Outcome]:
    """Run the queued continuations; the first `short_of_time` run out of time too and hand over again."""
    outcomes: list[Outcome] = []
    while queue.bodies:
        task = RangeTask.from_json(queue.bodies.pop(0))
        services = out_of_time(world, queue) if len(outcomes) < short_of_time else world.services()
        outcomes.append(ingest_range(services, task))
    return outcomes


def test_a_large_removal_hands_over_and_its_continuations_delete_each_item_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mirror_object, "REMOVAL_CHECK_EVERY", 20)
    assert ingest_object(world.services(), parse(world.put("data/big.jsonl", RECORDS))).records_written == 60
    queue, sent = ListQueue(), puts_sent(world)
    deleted = parse(world.delete("data/big.jsonl"))

    first = delete_object(out_of_time(world, queue), deleted)
    continued = run_continuations(world, queue, short_of_time=1)

    assert first.status == Status.CONTINUED
    assert first.detail.startswith("removed 20 items")
    assert [outcome.status for outcome in continued] == [Status.CONTINUED, Status.DELETED]
    # Each invocation counts what it removed (the ItemsRemoved metric adds up to the object's items).
    assert [first.items_removed, *(outcome.items_removed for outcome in continued)] == [20, 20, 20]
    assert world.records() == {}
    assert sent["delete"] == 60  # nobody deleted an item twice: each went on from what was left
    state = world.item(STATE_PREFIX + deleted.owner, "state")
    assert state["status"] == "deleted"
    assert "lease_token" not in state
    assert "fanout_token" not in state


def test_a_restored_large_version_hands_over_and_resumes_from_its_checkpoint(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(version_writer, "CHECKPOINT_EVERY", 10)
    ingest_object(world.services(), parse(world.put("data/big.jsonl", RECORDS)))
    v1 = world.records()
    newer = world.put("data/big.jsonl", '{"n": 0}\n')
    ingest_object(world.services(), parse(newer))
    queue, sent = ListQueue(), puts_sent(world)
    # Deleting the current version makes the 60-record one current again: delete-sync writes it.
    removed = parse(world.delete_version("data/big.jsonl", newer["detail"]["object"]["version-id"]))

    first = delete_object(out_of_time(world, queue), removed)
    continued = run_continuations(world, queue, short_of_time=1)

    assert first.status == Status.CONTINUED
    assert [outcome.status for outcome in continued] == [Status.CONTINUED, Status.RESTORED]
    assert world.records() == v1
    assert sent["put"] == 60  # each checkpoint was resumed from, nothing written twice


def test_a_newer_upload_takes_over_a_handed_over_delete_and_its_continuation_stops(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mirror_object, "REMOVAL_CHECK_EVERY", 20)
    ingest_object(world.services(), parse(world.put("data/big.jsonl", RECORDS)))
    queue = ListQueue()
    assert delete_object(out_of_time(world, queue), parse(world.delete("data/big.jsonl"))).status == (
        Status.CONTINUED
    )

    # No worker has taken the continuation yet: the newer upload takes the object over at once.
    upload = ingest_object(world.services(), parse(world.put("data/big.jsonl", '{"n": 0}\n')))
    continued = run_continuations(world, queue, short_of_time=0)

    assert upload.status == Status.INGESTED
    assert [outcome.status for outcome in continued] == [Status.STALE]
    assert list(world.records().values()) == [{"n": 0}]


class StoreWithVisitor(DynamoRecordStore):
    """The real store; `visit` runs once, just before the first superseded check (another event's
    invocation running while this one is between two deletes)."""

    visit: Callable[[], None] | None = None

    def superseded(self, object_id: str, sequencer: str) -> bool:
        if self.visit is not None:
            visit, self.visit = self.visit, None
            visit()
        return super().superseded(object_id, sequencer)


def test_a_newer_upload_stops_a_large_removal_at_its_next_check(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mirror_object, "REMOVAL_CHECK_EVERY", 20)
    ingest_object(world.services(), parse(world.put("data/big.jsonl", RECORDS)))
    deleted = parse(world.delete("data/big.jsonl"))
    upload = parse(world.put("data/big.jsonl", '{"n": 0}\n'))
    store = StoreWithVisitor(world.dynamodb, TABLE)

    def upload_arrives() -> None:
        with pytest.raises(ObjectBusyError):  # the delete holds the lease: the upload announces itself
            ingest_object(world.services(), upload)

    store.visit = upload_arrives
    stopped = delete_object(world.services(store=store), deleted)
    retried = ingest_object(world.services(), upload)  # Lambda's retry of the upload

    assert stopped.status == Status.SUPERSEDED
    assert retried.status == Status.INGESTED
    assert list(world.records().values()) == [{"n": 0}]


def test_a_large_natural_key_removal_hands_over_too(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mirror_object, "NATURAL_REMOVAL_CHECK_EVERY", 100)  # the deleter's batch
    people = "".join(
        json.dumps({"Name": f"P{n}", "Role": "r", "Email": f"p{n}@x.org"}) + "\n" for n in range(250)
    )
    assert (
        ingest_object(world.services(), parse(world.put("people/all.jsonl", people))).records_written == 250
    )
    queue, deletes = ListQueue(), list[str]()
    world.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.DeleteItem",
        lambda params, **_: deletes.append(params["Key"]["pk"]["S"]),
    )

    first = delete_object(out_of_time(world, queue), parse(world.delete("people/all.jsonl")))
    continued = run_continuations(world, queue, short_of_time=1)

    assert first.status == Status.CONTINUED
    assert [outcome.status for outcome in continued] == [Status.CONTINUED, Status.DELETED]
    # Each invocation got through its share: 100, 100, then the last 50; no item was deleted twice.
    assert [first.items_removed, *(outcome.items_removed for outcome in continued)] == [100, 100, 50]
    assert len(deletes) == len(set(deletes)) == 250
    assert world.records() == {}
