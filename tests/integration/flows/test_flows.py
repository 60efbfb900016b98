"""End-to-end flows on the embedded AWS: real objects uploaded to the deployed stack's bucket travel
S3 -> default bus -> forwarding rule -> project bus -> consumer rules -> the real Lambda code, and the
table is observed like a user would. The same flows run against AWS in tests/e2e (tests/e2e/flows.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from eventpipe.local.emulator import Emulator
from tests.e2e import flows
from tests.e2e.flows import Pipeline

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline(emulator: Emulator, aws: Callable[[str], Any], settle: Callable[[], None]) -> Pipeline:
    return Pipeline(client=aws, outputs=emulator.outputs, settle=settle)


def test_upload_creates_items(pipeline: Pipeline) -> None:
    latency = flows.upload_creates_items(pipeline)
    print(f"end-to-end latency on the embedded AWS (PutObject -> items visible): {latency:.2f} s")


def test_overwrite_replaces_items(pipeline: Pipeline) -> None:
    flows.overwrite_replaces_items(pipeline)


def test_delete_removes_items(pipeline: Pipeline) -> None:
    flows.delete_removes_items(pipeline)


def test_duplicate_upload_leaves_no_duplicates(pipeline: Pipeline) -> None:
    flows.duplicate_upload_leaves_no_duplicates(pipeline)


def test_failing_consumer_reaches_the_failure_queue_and_nothing_is_lost(
    pipeline: Pipeline, emulator: Emulator
) -> None:
    """AWS: EventBridge delivers to Lambda asynchronously; a function error is retried by Lambda
    (MaximumRetryAttempts), never reaches the rule's DLQ, and ends in the on-failure destination."""
    failure = flows.failing_consumer_reaches_the_failure_queue(pipeline)

    assert failure.record["requestPayload"]["detail-type"] == "Object Created"
    assert failure.record["responsePayload"]["errorType"] == "ResourceNotFoundException"
    pipeline.settle()
    sqs = emulator.client("sqs")
    depth = sqs.get_queue_attributes(
        QueueUrl=emulator.outputs["IngestDlqUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert depth == "0", "a function error must never reach the rule's dead-letter queue"
