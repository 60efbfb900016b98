"""Reading one object's position-keyed records across the key-layout-2 shards (and layout 1's single
partition) from a real (moto) table, in position order, with the queries it costs counted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from eventpipe.ops.object_records import Span, position_items
from functions.core.domain.table_layout import (
    SHARD_BLOCK,
    SHARD_COUNT,
    record_key,
    record_partition,
)

TABLE = "records"
BUCKET = "ingest"
KEY = "people/team.jsonl"
OWNER = f"{BUCKET}/{KEY}"


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        yield client


def put(dynamodb: Any, position: int, *, key: str = KEY, pk: str | None = None) -> None:
    """A record item as the write path keys it (table_layout.record_key), or under `pk` when given."""
    item_key = record_key(key, position)
    if pk is not None:
        item_key["pk"] = {"S": pk}
    dynamodb.put_item(
        TableName=TABLE,
        Item={**item_key, "owner": {"S": f"{BUCKET}/{key}"}, "position": {"N": str(position)}},
    )


def queried(dynamodb: Any) -> list[str]:
    """The partition key values of every Query the client sends from now on."""
    seen: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(params["ExpressionAttributeValues"][":pk"]["S"])

    dynamodb.meta.events.register("provide-client-params.dynamodb.Query", record)
    return seen


def read(dynamodb: Any, span: Span, **options: Any) -> list[int]:
    items = position_items(dynamodb, TABLE, KEY, owner=OWNER, span=span, **options)
    return [int(item["sk"]["S"]) for item in items]


def test_records_spread_over_shards_come_back_in_position_order(dynamodb: Any) -> None:
    last = 3 * SHARD_BLOCK + 7  # four blocks: shards 00..03
    for position in reversed(range(1, last + 1)):
        put(dynamodb, position)
    queries = queried(dynamodb)

    assert read(dynamodb, Span(last_position=last, legacy=False)) == list(range(1, last + 1))
    assert queries == [f"{KEY}#{shard:02d}" for shard in range(4)]


def test_an_object_of_more_blocks_than_shards_wraps_round_robin_and_still_reads_in_order(
    dynamodb: Any,
) -> None:
    last = SHARD_COUNT * SHARD_BLOCK + 2 * SHARD_BLOCK  # positions wrap to shards 00 and 01 again
    for position in range(1, last + 1):
        put(dynamodb, position)
    queries = queried(dynamodb)

    assert read(dynamodb, Span(last_position=last, legacy=False)) == list(range(1, last + 1))
    assert len(queries) == SHARD_COUNT
    assert record_partition(KEY, last) == f"{KEY}#01"


def test_unordered_reading_returns_the_same_items_partition_after_partition(dynamodb: Any) -> None:
    for position in range(1, 2 * SHARD_BLOCK + 1):
        put(dynamodb, position)

    found = read(dynamodb, Span(last_position=2 * SHARD_BLOCK, legacy=False), ordered=False)

    assert sorted(found) == list(range(1, 2 * SHARD_BLOCK + 1))


def test_the_legacy_partition_is_merged_in_when_the_span_includes_it(dynamodb: Any) -> None:
    put(dynamodb, 1)
    put(dynamodb, 2, pk=KEY)  # layout 1: pk = the object key, no shard suffix

    assert read(dynamodb, Span(last_position=2, legacy=True)) == [1, 2]
    assert read(dynamodb, Span(last_position=2, legacy=False)) == [1]


def test_positions_beyond_the_span_are_read_only_in_the_shards_it_covers(dynamodb: Any) -> None:
    put(dynamodb, 1)
    put(dynamodb, 2)
    put(dynamodb, 5 * SHARD_BLOCK + 1)  # a leftover in shard 05
    put(dynamodb, SHARD_COUNT * SHARD_BLOCK + 1)  # a leftover that wrapped to shard 00

    assert read(dynamodb, Span(last_position=2, legacy=False)) == [1, 2, SHARD_COUNT * SHARD_BLOCK + 1]
    assert read(dynamodb, Span.everything()) == [
        1,
        2,
        5 * SHARD_BLOCK + 1,
        SHARD_COUNT * SHARD_BLOCK + 1,
    ]


def test_items_of_another_object_sharing_a_partition_key_value_are_left_out(dynamodb: Any) -> None:
    # Layout 1 keyed object "<KEY>#00" under pk "<KEY>#00": shard 00 of KEY. The owner tells them apart.
    put(dynamodb, 1)
    put(dynamodb, 2, key=f"{KEY}#00", pk=f"{KEY}#00")
    dynamodb.put_item(  # and a natural-key item is never a position
        TableName=TABLE, Item={"pk": {"S": f"{KEY}#00"}, "sk": {"S": "record"}, "owner": {"S": OWNER}}
    )

    assert read(dynamodb, Span(last_position=2, legacy=False)) == [1]


@pytest.mark.parametrize(
    ("state", "span"),
    [
        (None, Span(last_position=None, legacy=True)),
        ({"status": "present", "last_position": 30, "layout": 2}, Span(30, legacy=False)),
        ({"status": "present", "last_position": 30}, Span(30, legacy=True)),  # layout 1
        ({"status": "deleted", "layout": 2}, Span(0, legacy=False)),
        ({"status": "present", "last_position": 30, "layout": 2, "dirty": True}, Span(None, False)),
        ({"status": "present", "last_position": 30, "layout": 2, "lease_token": "t"}, Span(None, False)),
    ],
)
def test_a_state_item_vouches_for_its_last_position_only_when_settled(
    state: dict[str, Any] | None, span: Span
) -> None:
    assert Span.of_state(state) == span


def test_what_a_span_covers() -> None:
    settled = Span(last_position=2 * SHARD_BLOCK, legacy=False)

    assert [settled.covers(KEY, f"{KEY}#{shard:02d}") for shard in range(3)] == [True, True, False]
    assert not settled.covers(KEY, KEY)
    assert Span(0, legacy=True).partitions(KEY) == [KEY]
    assert Span.everything().partitions(KEY)[-1] == KEY
    assert len(Span.everything().partitions(KEY)) == SHARD_COUNT + 1
