"""Shared fixtures for the ingest domain: an in-process moto AWS with the contract's table and buckets."""

from __future__ import annotations

import copy
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.adapters.s3_object_reader import S3ObjectReader
from functions.core.adapters.s3_report_sink import S3ReportSink
from functions.core.domain.datasets import DatasetRegistry
from functions.core.domain.events import ObjectEvent
from functions.core.domain.table_layout import STATE_PREFIX, record_partition
from functions.core.use_cases.ports import LeasePolicy, Services

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
BUCKET = "eventpipe-dev-ingest-example"
REJECTS = "eventpipe-dev-rejects-example"
TABLE = "eventpipe-dev-records"
REGION = "us-east-1"

_deserialize = TypeDeserializer().deserialize


def logical_key(item: dict[str, Any]) -> tuple[str, str]:
    """(object key, sk) of a position-keyed item in the partition the layout gives its position (an item
    elsewhere is marked, so no test mistakes it for one); (pk, sk) of any other item."""
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    if not sk.isdigit():
        return (pk, sk)
    object_key = item["owner"]["S"].split("/", 1)[1]
    if pk != record_partition(object_key, int(sk)):
        return (f"{pk} [outside its shard partition]", sk)
    return (object_key, sk)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
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


@dataclass
class World:
    """The emulated AWS of one test plus helpers that act like S3 and EventBridge would."""

    s3: Any
    dynamodb: Any
    versioned: bool = True
    sleeps: list[float] = field(default_factory=list)
    # A test clock: sleeping advances it instantly, so waiting logic runs without real delays.
    now: float = field(default_factory=time.time)
    _sequencer: Iterator[int] = field(default_factory=lambda: itertools.count(0x65D9A3C1B2E40000))

    def services(self, **overrides: Any) -> Services:
        values: dict[str, Any] = {
            "store": DynamoRecordStore(self.dynamodb, TABLE, sleep=self.sleeps.append),
            "objects": S3ObjectReader(self.s3),
            "reports": S3ReportSink(self.s3, REJECTS),
            "datasets": DatasetRegistry.load(),
            "max_json_bytes": 1024 * 1024,
            "lease": LeasePolicy(max_wait_seconds=0.0),
            "sleep": self.sleep,
            "clock": self.clock,
        }
        values.update(overrides)
        return Services(**values)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def next_sequencer(self) -> str:
        # S3 sequencers increase per key; a global counter satisfies that for every key at once.
        return f"{next(self._sequencer):018X}"

    def put(
        self, key: str, body: bytes | str, *, reason: str = "PutObject", replay: str | None = None
    ) -> dict[str, Any]:
        """Upload like a client, and return the EventBridge event S3 would publish for it."""
        data = body.encode() if isinstance(body, str) else body
        response = self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        event = copy.deepcopy(load_event("s3_object_created_put_versioned.json"))
        event["id"] = str(uuid.uuid4())
        obj = event["detail"]["object"]
        obj.update(
            {
                "key": encode_key(key),
                "size": len(data),
                "etag": response["ETag"].strip('"'),
                "sequencer": self.next_sequencer(),
            }
        )
        if self.versioned:
            obj["version-id"] = response["VersionId"]
        else:
            obj.pop("version-id", None)
        event["detail"]["reason"] = reason
        if replay:
            event["replay-name"] = replay
        return event

    def delete(self, key: str) -> dict[str, Any]:
        response = self.s3.delete_object(Bucket=BUCKET, Key=key)
        event = copy.deepcopy(load_event("s3_object_deleted_delete_marker.json"))
        event["id"] = str(uuid.uuid4())
        obj = {"key": encode_key(key), "sequencer": self.next_sequencer()}
        if self.versioned and "VersionId" in response:
            obj["version-id"] = response["VersionId"]
            event["detail"]["deletion-type"] = "Delete Marker Created"
        else:  # unversioned bucket (moto also omits the marker when the key never existed)
            event["detail"]["deletion-type"] = "Permanently Deleted"
        event["detail"]["object"] = obj
        return event

    def delete_version(self, key: str, version_id: str, *, reason: str = "DeleteObject") -> dict[str, Any]:
        """Permanently delete one version (DeleteObject with VersionId, or noncurrent-version lifecycle
        with `reason="Lifecycle Expiration"`), and return the event S3 would publish for it."""
        self.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version_id)
        event = copy.deepcopy(load_event("s3_object_deleted_lifecycle_noncurrent.json"))
        event["id"] = str(uuid.uuid4())
        event["detail"]["reason"] = reason
        event["detail"]["object"] = {
            "key": encode_key(key),
            "version-id": version_id,
            "sequencer": self.next_sequencer(),
        }
        return event

    def records(self) -> dict[tuple[str, str], Any]:
        """The record items of the table as {(object key or natural key, sk): record data}, state items
        left out. Every position-keyed item is checked to sit in its shard partition (table_layout.py)."""
        found: dict[tuple[str, str], Any] = {}
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=TABLE):
            for item in page["Items"]:
                if item["pk"]["S"].startswith(STATE_PREFIX):
                    continue
                found[logical_key(item)] = _deserialize(item["data"])
        return found

    def item(self, pk: str, sk: str) -> dict[str, Any]:
        """The item of (object key, position sort key) or (natural key, "record")."""
        if sk.isdigit():
            pk = record_partition(pk, int(sk))
        item = self.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        assert item is not None, f"no item {pk!r}/{sk!r}"
        return {name: _deserialize(value) for name, value in item.items()}

    def report(self, key: str) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=REJECTS, Key=key)["Body"].read().decode()
        return [json.loads(line) for line in body.splitlines() if line]

    def report_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=REJECTS)
        return [entry["Key"] for entry in listing.get("Contents", [])]


def encode_key(key: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(key, safe="/")


def parse(event: dict[str, Any]) -> ObjectEvent:
    return ObjectEvent.from_eventbridge(event)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _world(versioned: bool) -> Iterator[World]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=REJECTS)
        if versioned:
            s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        create_table(dynamodb)
        yield World(s3=s3, dynamodb=dynamodb, versioned=versioned)


@pytest.fixture
def world(aws_env: None) -> Iterator[World]:
    yield from _world(versioned=True)


@pytest.fixture
def unversioned_world(aws_env: None) -> Iterator[World]:
    yield from _world(versioned=False)
