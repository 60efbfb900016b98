"""`eventpipe reconcile` over key layout 2 against a real (moto) bucket and table: each object is read
from the shards its state vouches for, record items anywhere else are still found (the table pass),
and layout-1 leftovers are reported as `legacy_layout`. The items are put as the write path keys them
(table_layout.record_key); repair through the write path is covered by
tests/integration/flows/test_inspect_reconcile.py."""

from __future__ import annotations

from typing import Any

import pytest
from ops_fakes import BUCKET, Deployed

from eventpipe.ops.reconcile import reconcile
from functions.core.domain.table_layout import LAYOUT, SHARD_BLOCK, record_key, state_key

KEY = "data/a.jsonl"  # the default dataset: position-keyed only


@pytest.fixture
def stack(deployed: Deployed) -> Deployed:
    """The fake stack's versioned bucket and records table (with the `by-owner` index)."""
    s3 = deployed.ctx.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    deployed.ctx.client("dynamodb").create_table(
        TableName=deployed.outputs["TableName"],
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "owner")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-owner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )
    return deployed


class Table:
    """Items put as the pipeline's write path would have left them."""

    def __init__(self, stack: Deployed) -> None:
        self.dynamodb = stack.ctx.client("dynamodb")
        self.s3 = stack.ctx.client("s3")
        self.table = stack.outputs["TableName"]

    def upload(self, key: str = KEY) -> str:
        return str(self.s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"n": 1}\n{"n": 2}\n')["VersionId"])

    def state(
        self, version: str, *, key: str = KEY, count: int = 2, layout: int | None = LAYOUT, **more: Any
    ) -> None:
        item = {
            **state_key(f"{BUCKET}/{key}"),
            "status": {"S": more.pop("status", "present")},
            "version_id": {"S": version},
            "sequencer": {"S": "0A1"},
            "record_count": {"N": str(count)},
            "last_position": {"N": str(count)},
        }
        if layout is not None:
            item["layout"] = {"N": str(layout)}
        self.dynamodb.put_item(TableName=self.table, Item=item)

    def record(self, position: int, version: str, *, key: str = KEY, pk: str | None = None) -> None:
        item_key = record_key(key, position)
        if pk is not None:
            item_key["pk"] = {"S": pk}
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                **item_key,
                "owner": {"S": f"{BUCKET}/{key}"},
                "position": {"N": str(position)},
                "version_id": {"S": version},
                "data": {"M": {"n": {"N": str(position)}}},
            },
        )

    def queried(self) -> list[str]:
        """The partition key values of every Query on the table from now on."""
        seen: list[str] = []

        def record(params: dict[str, Any], **_: Any) -> None:
            if "IndexName" not in params:
                seen.append(params["ExpressionAttributeValues"][":pk"]["S"])

        self.dynamodb.meta.events.register("provide-client-params.dynamodb.Query", record)
        return seen


def drift(stack: Deployed) -> dict[str, set[str]]:
    result = reconcile(stack.ctx)
    return {report.key: {d.kind for d in report.drifts} for report in result.reports}


@pytest.fixture
def table(stack: Deployed) -> Table:
    return Table(stack)


def test_a_mirrored_object_costs_one_query_of_the_one_shard_it_uses(stack: Deployed, table: Table) -> None:
    version = table.upload()
    table.state(version)
    table.record(1, version)
    table.record(2, version)
    queries = table.queried()

    assert drift(stack) == {}
    assert queries == [f"{KEY}#00"]


def test_a_record_beyond_the_last_position_in_a_shard_the_object_does_not_use_is_found(
    stack: Deployed, table: Table
) -> None:
    version = table.upload()
    table.state(version)
    table.record(1, version)
    table.record(2, version)
    table.record(5 * SHARD_BLOCK + 1, version)  # shard 05: not among the partitions of positions 1..2

    result = reconcile(stack.ctx)

    assert [(r.key, [(d.kind, d.detail) for d in r.drifts]) for r in result.reports] == [
        (KEY, [("count_mismatch", "state counts 2 records, table holds 3")])
    ]


def test_a_layout_1_object_is_read_under_its_own_key_and_reported_as_legacy(
    stack: Deployed, table: Table
) -> None:
    version = table.upload()
    table.state(version, layout=None)  # committed before key layout 2: no `layout`
    table.record(1, version, pk=KEY)
    table.record(2, version, pk=KEY)
    queries = table.queried()

    assert drift(stack) == {KEY: {"legacy_layout"}}
    assert queries == [f"{KEY}#00", KEY]


def test_a_layout_1_item_left_beside_a_layout_2_object_is_found_by_the_table_pass(
    stack: Deployed, table: Table
) -> None:
    version = table.upload()
    table.state(version)
    table.record(1, version)
    table.record(2, version)
    table.record(2, version, pk=KEY)  # the layout-1 copy the write path should have removed

    assert drift(stack) == {KEY: {"legacy_layout", "count_mismatch"}}


def test_an_absent_object_with_a_clean_tombstone_costs_no_record_query(stack: Deployed, table: Table) -> None:
    table.state("v0", key="data/gone.jsonl", count=0, status="deleted")
    queries = table.queried()

    assert drift(stack) == {}
    assert queries == []


def test_a_record_left_in_any_shard_of_an_absent_object_is_drift(stack: Deployed, table: Table) -> None:
    gone = "data/gone.jsonl"
    table.state("v0", key=gone, count=0, status="deleted")
    table.record(3 * SHARD_BLOCK + 4, "v0", key=gone)  # shard 03

    assert drift(stack) == {gone: {"records_for_absent_object"}}


def test_records_of_an_object_without_a_state_item_are_counted_across_every_shard(
    stack: Deployed, table: Table
) -> None:
    version = table.upload()
    table.record(1, version)
    table.record(40 * SHARD_BLOCK + 1, version)  # shard 40

    result = reconcile(stack.ctx)

    assert [(d.kind, d.detail) for d in result.reports[0].drifts] == [
        ("missing_state", "the object is in the bucket, the table has no state item"),
        ("count_mismatch", "2 record items without a state item"),
    ]


def test_a_natural_key_object_is_read_through_its_index_once_and_never_rechecked(
    stack: Deployed, table: Table
) -> None:
    key = "people/team.jsonl"  # the `people` dataset: natural keys
    version = table.upload(key)
    table.state(version, key=key, count=1)
    table.dynamodb.put_item(
        TableName=table.table,
        Item={
            "pk": {"S": "people#a@x.io"},
            "sk": {"S": "record"},
            "owner": {"S": f"{BUCKET}/{key}"},
            "position": {"N": "1"},
            "version_id": {"S": version},
        },
    )
    queries = table.queried()

    assert drift(stack) == {}
    assert queries == [f"{key}#00"]  # and no second look across every shard
