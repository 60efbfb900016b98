"""Helpers of the ops unit tests: real-shaped events and a fake stack wrapper (see conftest.py)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from eventpipe.ops.context import OpsContext

REGION = "us-east-1"
STACK = "eventpipe-dev"
BUCKET = "eventpipe-dev-ingest"


def s3_event(key: str, *, detail_type: str = "Object Created", event_id: str | None = None) -> dict[str, Any]:
    """A real-shaped S3 EventBridge event (as delivered through the project bus): the key is URL-encoded
    form-style, as S3 sends it."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-26T10:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": 42,
                "etag": "0f343b0931126a20f133d67c2b018a3b",
                "sequencer": "0A1",
            },
            "request-id": "R1",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


@dataclass
class Deployed:
    """The fake stack: its context plus helpers to put dead letters where the real stack would."""

    ctx: OpsContext
    outputs: dict[str, str]
    sqs: Any

    def url(self, key: str) -> str:
        return self.outputs[key]

    def add_dead_letter(
        self, consumer_prefix: str, event: dict[str, Any], *, code: str = "Throttling"
    ) -> str:
        """A rule-DLQ message as EventBridge writes it: the event as body, the reason as attributes."""
        attributes = {
            "ERROR_CODE": code,
            "ERROR_MESSAGE": f"{code} while delivering",
            "RULE_ARN": self.outputs[f"{consumer_prefix}RuleArn"],
            "TARGET_ARN": self.outputs[f"{consumer_prefix}TargetArn"],
            "RETRY_ATTEMPTS": "8",
        }
        return str(
            self.sqs.send_message(
                QueueUrl=self.outputs[f"{consumer_prefix}DlqUrl"],
                MessageBody=json.dumps(event),
                MessageAttributes={
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
                },
            )["MessageId"]
        )

    def add_failure_record(self, consumer_prefix: str, event: dict[str, Any]) -> str:
        """A Lambda on-failure destination record (RetriesExhausted after an unhandled error)."""
        record = {
            "version": "1.0",
            "timestamp": "2026-11-26T10:00:05.000Z",
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.outputs[f"{consumer_prefix}TargetArn"] + ":$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": "table is throttled", "errorType": "ThrottlingError"},
        }
        return str(
            self.sqs.send_message(
                QueueUrl=self.outputs[f"{consumer_prefix}FailureQueueUrl"], MessageBody=json.dumps(record)
            )["MessageId"]
        )

    def fail_range_task(self, task: dict[str, Any]) -> str:
        """A range task the range worker failed on 3 times: received 3 times and never deleted (what the
        event source mapping does with a reported failure), so the work queue's redrive policy moves it
        to the range work DLQ on the next receive, as SQS does."""
        url = self.outputs["RangeWorkerQueueUrl"]
        message_id = str(self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(task))["MessageId"])
        for _ in range(3):
            # Visibility 0: visible again at once, as after the visibility timeout.
            assert self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
        assert self.sqs.receive_message(QueueUrl=url).get("Messages", []) == []  # moved to the DLQ
        return message_id

    def depth(self, output_key: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.outputs[output_key],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def drain(self, output_key: str) -> list[dict[str, Any]]:
        """Every message body of a queue (consumed): what a consumer received."""
        bodies: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.outputs[output_key], MaxNumberOfMessages=10, VisibilityTimeout=60
            ).get("Messages", [])
            if not messages:
                return bodies
            bodies.extend(json.loads(message["Body"]) for message in messages)
