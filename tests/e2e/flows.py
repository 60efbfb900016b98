"""The pipeline's end-to-end flows, written once and run against two environments: the embedded AWS
(`tests/integration/test_flows.py`) and a deployed stack (`tests/e2e/test_deployed_flows.py`).

A `Pipeline` is only boto3 clients + the stack outputs (architecture.md) + how to wait: every flow
uploads real objects to the ingest bucket and observes the table, the way a user would. Each flow uses
its own key prefix, so flows never see each other's objects, and polls with a deadline (no sleeps that
hope). Objects are keyed outside the `people/` dataset: items are keyed by object key and position.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from boto3.dynamodb.types import TypeDeserializer

from functions.core.domain.table_layout import record_key

T = TypeVar("T")
_DESERIALIZER = TypeDeserializer()
OWNER_INDEX = "by-owner"


@dataclass(frozen=True)
class StoredRecord:
    """One record item as the table holds it."""

    pk: str
    sk: str
    position: int
    data: dict[str, Any]
    version_id: str | None
    sequencer: str


@dataclass
class Pipeline:
    """A deployed eventpipe stack seen through boto3 clients and its outputs."""

    client: Callable[[str], Any]
    outputs: Mapping[str, str]
    settle: Callable[[], None] = lambda: None  # returns once processing settled, where knowable
    deadline_seconds: float = 30.0
    # Async retries run on Lambda's clock: about 3 minutes on AWS, about 2 seconds locally.
    failure_deadline_seconds: float = 60.0
    poll_seconds: float = 0.1
    run_prefix: str = field(default_factory=lambda: f"e2e-flows/{uuid.uuid4().hex[:12]}/")
    _clients: dict[str, Any] = field(default_factory=dict)

    def aws(self, service: str) -> Any:
        """A cached boto3 client for `service`."""
        if service not in self._clients:
            self._clients[service] = self.client(service)
        return self._clients[service]

    @property
    def bucket(self) -> str:
        return self.outputs["BucketName"]

    @property
    def table(self) -> str:
        return self.outputs["TableName"]

    def key(self, name: str) -> str:
        return f"{self.run_prefix}{name}"

    # --- acting -----------------------------------------------------------------------------------

    def put_records(self, key: str, records: Sequence[Mapping[str, Any]]) -> str | None:
        """Upload records as JSON Lines; returns the new object version id (versioned bucket)."""
        body = "".join(json.dumps(record) + "\n" for record in records).encode()
        response = self.aws("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        version: str | None = response.get("VersionId")
        return version

    def delete(self, key: str) -> None:
        self.aws("s3").delete_object(Bucket=self.bucket, Key=key)

    # --- observing --------------------------------------------------------------------------------

    def records(self, key: str) -> list[StoredRecord]:
        """The record items the object `key` currently owns, in position order."""
        dynamodb = self.aws("dynamodb")
        keys: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": f"{self.bucket}/{key}"}},
        }
        while True:
            page = dynamodb.query(**query)
            keys.extend({"pk": item["pk"], "sk": item["sk"]} for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found = []
        for item_key in keys:  # the index is KEYS_ONLY: read each item (flows own few records)
            item = dynamodb.get_item(TableName=self.table, Key=item_key, ConsistentRead=True).get("Item")
            if item and "data" in item:
                found.append(_stored_record(item))
        return sorted(found, key=lambda record: record.position)

    def eventually(
        self, probe: Callable[[], T | None], what: str, *, deadline_seconds: float | None = None
    ) -> T:
        """Poll `probe` until it returns something other than None, or fail naming `what`."""
        deadline = time.monotonic() + (deadline_seconds or self.deadline_seconds)
        while True:
            value = probe()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(self.poll_seconds)

    def records_matching(
        self, key: str, expected: Sequence[Mapping[str, Any]], *, version_id: str | None = None
    ) -> list[StoredRecord]:
        """Wait until `key` owns exactly `expected` (from `version_id`, when given)."""

        def probe() -> list[StoredRecord] | None:
            current = self.records(key)
            if [record.data for record in current] != list(expected):
                return None
            if version_id is not None and any(record.version_id != version_id for record in current):
                return None
            return current

        return self.eventually(probe, f"{key} to own {len(expected)} record(s)")


def _stored_record(item: Mapping[str, Any]) -> StoredRecord:
    plain = {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
    return StoredRecord(
        pk=plain["pk"],
        sk=plain["sk"],
        position=int(plain["position"]),
        data=_plain_numbers(plain["data"]),
        version_id=plain.get("version_id"),
        sequencer=plain.get("sequencer", ""),
    )


def _plain_numbers(value: Any) -> Any:
    """Decimal -> int where integral, so records compare equal to the JSON that was uploaded."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, dict):
        return {name: _plain_numbers(inner) for name, inner in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(inner) for inner in value]
    return value


def people(count: int, *, tag: str) -> list[dict[str, Any]]:
    return [{"name": f"person {n}", "n": n, "tag": tag} for n in range(count)]


# --- the flows ------------------------------------------------------------------------------------


def upload_creates_items(pipeline: Pipeline) -> float:
    """Given a new JSON Lines object, its records appear as items keyed by object key and position
    (key layout 2: `pk = <key>#<shard>`, table_layout.record_key).
    Returns the latency from PutObject to the last item being visible, in seconds."""
    key = pipeline.key("upload.jsonl")
    records = people(3, tag="upload")
    started = time.monotonic()
    version = pipeline.put_records(key, records)
    stored = pipeline.records_matching(key, records, version_id=version)
    latency = time.monotonic() - started
    # Positions count from 1 (position 0 in a rejects report means the object as a whole).
    assert [(r.pk, r.sk, r.position) for r in stored] == [
        (record_key(key, p)["pk"]["S"], record_key(key, p)["sk"]["S"], p) for p in (1, 2, 3)
    ]
    return latency


def overwrite_replaces_items(pipeline: Pipeline) -> None:
    """Overwriting an object replaces its records: the new version's, and no leftovers of the old one."""
    key = pipeline.key("overwrite.jsonl")
    pipeline.put_records(key, people(4, tag="old"))
    pipeline.records_matching(key, people(4, tag="old"))

    new_records = [{"name": "only one", "n": 99, "tag": "new"}]
    version = pipeline.put_records(key, new_records)

    pipeline.records_matching(key, new_records, version_id=version)
    pipeline.settle()
    assert [r.data for r in pipeline.records(key)] == new_records


def delete_removes_items(pipeline: Pipeline) -> None:
    """Deleting an object removes the records it owned (delete-sync consumer)."""
    key = pipeline.key("delete.jsonl")
    pipeline.put_records(key, people(2, tag="delete"))
    pipeline.records_matching(key, people(2, tag="delete"))

    pipeline.delete(key)

    pipeline.eventually(lambda: True if not pipeline.records(key) else None, f"{key}'s items to be removed")


def duplicate_upload_leaves_no_duplicates(pipeline: Pipeline) -> None:
    """Uploading the same content twice (two events, two versions) leaves each record exactly once."""
    key = pipeline.key("duplicate.jsonl")
    records = people(3, tag="duplicate")
    pipeline.put_records(key, records)
    pipeline.records_matching(key, records)

    second = pipeline.put_records(key, records)

    pipeline.records_matching(key, records, version_id=second)
    pipeline.settle()
    again = pipeline.records(key)
    assert [r.data for r in again] == records
    assert len(again) == len(records)


@dataclass(frozen=True)
class FailureRecord:
    record: dict[str, Any]
    maximum_retry_attempts: int


def failing_consumer_reaches_the_failure_queue(pipeline: Pipeline) -> FailureRecord:
    """A consumer that fails (its table made unreachable through UpdateFunctionConfiguration, then
    restored) is retried per its async config; then its failure queue holds Lambda's record of the
    original event. Invoking the function again with that payload, as a redrive does, stores the records:
    nothing was lost."""
    lambda_client = pipeline.aws("lambda")
    function = pipeline.outputs["IngestFunctionName"]
    original = lambda_client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    retries = lambda_client.get_function_event_invoke_config(FunctionName=function)["MaximumRetryAttempts"]
    key = pipeline.key("failing.jsonl")
    records = people(2, tag="failing")

    _update_environment(pipeline, function, {**original, "TABLE_NAME": f"{original['TABLE_NAME']}-missing"})
    try:
        pipeline.put_records(key, records)
        message = pipeline.eventually(
            lambda: _failure_message_for(pipeline, key),
            f"the failure record of {key}",
            deadline_seconds=pipeline.failure_deadline_seconds,
        )
    finally:
        _update_environment(pipeline, function, original)
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == retries + 1
    assert record["requestContext"]["functionArn"].split(":")[6] == function
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"]
    assert record["responsePayload"]["errorMessage"]
    assert pipeline.records(key) == []

    response = lambda_client.invoke(
        FunctionName=function, Payload=json.dumps(record["requestPayload"]).encode()
    )
    assert "FunctionError" not in response, response["Payload"].read()
    pipeline.records_matching(key, records)
    pipeline.aws("sqs").delete_message(
        QueueUrl=pipeline.outputs["IngestFailureQueueUrl"], ReceiptHandle=message["ReceiptHandle"]
    )
    return FailureRecord(record=record, maximum_retry_attempts=retries)


def _update_environment(pipeline: Pipeline, function: str, variables: Mapping[str, str]) -> None:
    lambda_client = pipeline.aws("lambda")
    lambda_client.update_function_configuration(
        FunctionName=function, Environment={"Variables": dict(variables)}
    )

    def updated() -> bool | None:
        status = lambda_client.get_function_configuration(FunctionName=function).get("LastUpdateStatus")
        return True if status in (None, "Successful") else None

    pipeline.eventually(updated, f"{function}'s configuration update")


def _failure_message_for(pipeline: Pipeline, key: str) -> dict[str, Any] | None:
    """The failure-queue message whose original event is about `key` (others are left visible)."""
    sqs = pipeline.aws("sqs")
    queue_url = pipeline.outputs["IngestFailureQueueUrl"]
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    found = None
    for message in response.get("Messages", []):
        detail = json.loads(message["Body"]).get("requestPayload", {}).get("detail", {})
        if unquote_plus(detail.get("object", {}).get("key", "")) == key and found is None:
            found = message
        else:
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    return found
