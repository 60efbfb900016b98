"""The end-to-end benchmark's probe finds an object's record where the write path keys it (key layout 2:
shard 00 of the object), in a real (moto) table; an object without its record is not seen."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bench.end_to_end import BATCH_GET_LIMIT, _visible_keys
from functions.core.domain.table_layout import record_key

TABLE = "records"


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


def test_the_probe_sees_exactly_the_objects_whose_record_landed(dynamodb: Any) -> None:
    keys = [f"bench/e2e/person {index:05d}.json" for index in range(BATCH_GET_LIMIT + 5)]
    landed = keys[::3]
    for key in landed:
        dynamodb.put_item(TableName=TABLE, Item={**record_key(key, 1), "data": {"M": {}}})
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": keys[1]}, "sk": record_key(keys[1], 1)["sk"]})

    assert _visible_keys(dynamodb, TABLE, keys) == set(landed)  # not keys[1]: layout 1's key
