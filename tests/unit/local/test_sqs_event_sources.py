"""Lambda's reading of a partial batch response and its SQS record shape, without an emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventpipe.local.lambda_runtime.sqs_event_sources import SqsMapping, failed_messages, sqs_record

BATCH = [{"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": str(n)} for n in range(3)]


def _ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["MessageId"] for m in messages]


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        (None, []),  # a null response: complete success
        ({}, []),  # an empty response
        ({"batchItemFailures": None}, []),
        ({"batchItemFailures": []}, []),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, ["m1"]),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m0"}]}, ["m2", "m0"]),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, ["m0", "m1", "m2"]),  # empty identifier
        ({"batchItemFailures": [{"itemIdentifier": None}]}, ["m0", "m1", "m2"]),  # null identifier
        ({"batchItemFailures": [{"id": "m1"}]}, ["m0", "m1", "m2"]),  # a bad key name
        ({"batchItemFailures": [{"itemIdentifier": "elsewhere"}]}, ["m0", "m1", "m2"]),  # not in the batch
    ],
)
def test_partial_batch_response_is_read_as_lambda_documents(response: Any, failed: list[str]) -> None:
    assert _ids(failed_messages(BATCH, json.dumps(response).encode(), True)) == failed


def test_invalid_json_fails_the_whole_batch() -> None:
    assert _ids(failed_messages(BATCH, b"{not json", True)) == ["m0", "m1", "m2"]


def test_without_report_batch_item_failures_the_response_is_ignored() -> None:
    payload = json.dumps({"batchItemFailures": [{"itemIdentifier": "m1"}]}).encode()
    assert failed_messages(BATCH, payload, False) == []


def test_record_carries_lambdas_fields_and_camel_case_attributes() -> None:
    message = {
        "MessageId": "id-1",
        "ReceiptHandle": "handle",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
        "MD5OfMessageAttributes": "abc",
        "MessageAttributes": {
            "text": {"DataType": "String", "StringValue": "v"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    }
    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:q"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["md5OfMessageAttributes"] == "abc"
    assert record["messageAttributes"]["text"] == {
        "stringValue": "v",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="


def test_mapping_reads_the_api_shape() -> None:
    mapping = SqsMapping.from_api(
        {
            "UUID": "u",
            "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:worker",
            "EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:work",
            "BatchSize": 1,
            "State": "Disabled",
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 4},
        }
    )
    assert mapping is not None
    assert (mapping.function_name, mapping.batch_size, mapping.enabled) == ("worker", 1, False)
    assert (mapping.report_batch_item_failures, mapping.maximum_concurrency) == (True, 4)
    kinesis = {"UUID": "k", "EventSourceArn": "arn:aws:kinesis:us-east-1:1:stream/s"}
    assert SqsMapping.from_api(kinesis) is None
