"""The DynamoDB data layer against moto: request counts, UnprocessedItems retries, refusals."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.core.adapters.dynamodb_record_store import MAX_UNPROCESSED_ROUNDS, DynamoRecordStore
from functions.core.domain.object_state import TransientStoreError
from functions.core.domain.table_layout import record_partition
from functions.core.use_cases.ingest import ingest_object

from ..conftest import TABLE, World, parse


class CountingClient:
    """The real moto client, with a tally of the operations called through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls[name] += 1
            return operation(**kwargs)

        return call


class ThrottlingClient(CountingClient):
    """Moto's client, except that the first `rounds` BatchWriteItem calls leave half the batch unprocessed
    (what DynamoDB does under throttling); the processed half really is written. With `stuck`, nothing
    is ever processed (a table throttled for longer than the retries last)."""

    def __init__(self, client: Any, rounds: int, *, stuck: bool = False) -> None:
        super().__init__(client)
        self.rounds = rounds
        self.stuck = stuck

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        self.calls["batch_write_item"] += 1
        requests = RequestItems[TABLE]
        if self.rounds <= 0 or len(requests) < 2:
            return self._client.batch_write_item(RequestItems=RequestItems)
        self.rounds -= 1
        if self.stuck:
            return {"UnprocessedItems": {TABLE: requests}}
        half = len(requests) // 2
        self._client.batch_write_item(RequestItems={TABLE: requests[:half]})
        return {"UnprocessedItems": {TABLE: requests[half:]}}


def item(n: int, pk: str = "data/a.jsonl") -> dict[str, Any]:
    return {
        "pk": {"S": record_partition(pk, n)},  # layout 2 (table_layout.py)
        "sk": {"S": f"{n:012d}"},
        "owner": {"S": f"b/{pk}"},
        "sequencer": {"S": "1"},
        "data": {"M": {"n": {"N": str(n)}}},
    }


@pytest.mark.parametrize("records", [1, 24, 25, 26, 1000, 1001])
def test_ingesting_a_new_object_sends_ceil_records_over_25_batch_writes(world: World, records: int) -> None:
    client = CountingClient(world.dynamodb)
    body = "".join(json.dumps({"n": n}) + "\n" for n in range(records))
    event = world.put("data/a.jsonl", body)

    outcome = ingest_object(world.services(store=DynamoRecordStore(client, TABLE)), parse(event))

    assert outcome.records_written == records
    assert client.calls["batch_write_item"] == math.ceil(records / 25) == outcome.write_requests
    assert client.calls["put_item"] == client.calls["delete_item"] == 0
    assert client.calls["update_item"] == 2  # acquire + commit of the object's state item
    assert len(world.records()) == records


def test_unprocessed_items_are_retried_with_backoff_until_written(world: World) -> None:
    client = ThrottlingClient(world.dynamodb, rounds=3)
    store = DynamoRecordStore(client, TABLE, sleep=world.sleeps.append)
    writer = store.writer()

    for n in range(1, 26):
        writer.put(item(n))
    writer.flush()

    assert len(world.records()) == 25
    assert client.calls["batch_write_item"] == 4
    assert len(world.sleeps) == 3
    # Full jitter under an exponential cap: each pause is within base * 2**attempt.
    assert all(0 <= pause <= 0.05 * 2**attempt for attempt, pause in enumerate(world.sleeps))


@pytest.mark.parametrize("writers", [1, 16])
def test_writes_still_unprocessed_after_bounded_retries_raise_a_transient_error(
    world: World, writers: int
) -> None:
    client = ThrottlingClient(world.dynamodb, rounds=1000, stuck=True)
    writer = DynamoRecordStore(client, TABLE, sleep=world.sleeps.append, writers=writers).writer()

    def put_25_and_flush() -> None:
        for n in range(1, 26):
            writer.put(item(n))  # one writer sends the batch at the 25th put and fails there
        writer.flush()  # a pool sends it in the background: its failure surfaces here

    with pytest.raises(TransientStoreError):
        put_25_and_flush()

    assert client.calls["batch_write_item"] == MAX_UNPROCESSED_ROUNDS + 1
    assert len(world.sleeps) == MAX_UNPROCESSED_ROUNDS


def test_two_writes_of_one_key_in_a_batch_keep_the_later(world: World) -> None:
    writer = DynamoRecordStore(world.dynamodb, TABLE).writer()
    later = item(1)
    later["data"] = {"M": {"n": {"N": "99"}}}

    writer.put(item(1))
    writer.put(later)
    writer.flush()

    assert world.records() == {("data/a.jsonl", "000000000001"): {"n": 99}}
    assert writer.requests == 1


def test_an_item_dynamodb_refuses_is_reported_and_the_rest_of_its_batch_written(world: World) -> None:
    refused: list[tuple[str, str]] = []
    writer = DynamoRecordStore(world.dynamodb, TABLE).writer(
        lambda bad, message: refused.append((bad["sk"]["S"], message))
    )
    too_big = item(2)
    too_big["data"] = {"M": {"blob": {"S": "x" * 500_000}}}  # bypasses the converter's own size check

    for record in (item(1), too_big, item(3)):
        writer.put(record)
    writer.flush()

    assert [sk for sk, _ in refused] == ["000000000002"]
    assert set(world.records()) == {("data/a.jsonl", "000000000001"), ("data/a.jsonl", "000000000003")}


def test_without_a_refusal_handler_an_invalid_batch_raises(world: World) -> None:
    writer = DynamoRecordStore(world.dynamodb, TABLE).writer()
    too_big = item(1)
    too_big["data"] = {"M": {"blob": {"S": "x" * 500_000}}}

    writer.put(too_big)
    with pytest.raises(ClientError, match=r"ValidationException"):
        writer.flush()
