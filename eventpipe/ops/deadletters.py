"""Dead letters: what the two failure queues of a consumer hold, read without losing anything.

- The rule DLQ (`dlq`) gets events EventBridge could not deliver: the body is the event itself, the
  message attributes ERROR_CODE, ERROR_MESSAGE, RULE_ARN, TARGET_ARN, RETRY_ATTEMPTS say why.
- A Lambda consumer's failure queue (`failures`) gets Lambda's on-failure destination records: the
  original event is `requestPayload`, the error is in `responsePayload` / `requestContext.condition`.
- The range work DLQ (`tasks`) gets the range tasks the range worker failed on 3 times, moved there
  unchanged by SQS (the queue's redrive policy): the body is the task, a JSON object; no error is
  attached (the worker's logs and its Errors alarm say why).

Reading is always receive -> (work) -> release or delete: a message received here stays invisible
only while this process holds it, and is released (visibility 0) when the process is done with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

DLQ = "dlq"
FAILURES = "failures"
TASKS = "tasks"
_BATCH = 10  # SQS maximum per ReceiveMessage / ChangeMessageVisibilityBatch


@dataclass
class DeadLetter:
    """One parsed dead-letter message. `payload` is the event to re-deliver; None when unparseable."""

    queue_role: str
    message_id: str
    receipt_handle: str
    payload: dict[str, Any] | None
    problem: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    rule_arn: str | None = None
    function_arn: str | None = None
    sent_at: datetime | None = None
    receive_count: int = 0

    @property
    def event_id(self) -> str | None:
        if self.payload and self.queue_role == TASKS:
            event = self.payload.get("event")
            return _text(event.get("event_id")) if isinstance(event, dict) else None
        return _text(self.payload.get("id")) if self.payload else None

    @property
    def object_key(self) -> str | None:
        """The object key as users know it: S3 events carry it URL-encoded form-style (space as `+`)."""
        if not self.payload:
            return None
        if self.queue_role == TASKS:  # a range task carries its decoded event (range_task.py)
            event = self.payload.get("event")
            return _text(event.get("key")) if isinstance(event, dict) else None
        detail = self.payload.get("detail")
        obj = detail.get("object") if isinstance(detail, dict) else None
        key = _text(obj.get("key")) if isinstance(obj, dict) else None
        return unquote_plus(key) if key is not None else None

    @property
    def replay_name(self) -> str | None:
        return _text(self.payload.get("replay-name")) if self.payload else None

    def as_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue_role,
            "messageId": self.message_id,
            "eventId": self.event_id,
            "objectKey": self.object_key,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "ruleArn": self.rule_arn,
            "functionArn": self.function_arn,
            "sentAt": self.sent_at.isoformat() if self.sent_at else None,
            "receiveCount": self.receive_count,
            "problem": self.problem,
        }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _attribute(message: Mapping[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name, {})
    return _text(value.get("StringValue"))


def parse_message(message: Mapping[str, Any], queue_role: str) -> DeadLetter:
    """A received SQS message as a DeadLetter; never raises (bad input becomes `problem`)."""
    attributes = message.get("Attributes", {})
    sent_ms = attributes.get("SentTimestamp")
    letter = DeadLetter(
        queue_role=queue_role,
        message_id=str(message.get("MessageId", "")),
        receipt_handle=str(message.get("ReceiptHandle", "")),
        payload=None,
        sent_at=datetime.fromtimestamp(int(sent_ms) / 1000, UTC) if str(sent_ms or "").isdigit() else None,
        receive_count=int(attributes.get("ApproximateReceiveCount", 0) or 0),
    )
    try:
        body = json.loads(message.get("Body", ""))
    except (TypeError, ValueError):
        letter.problem = "body is not JSON"
        return letter
    if not isinstance(body, dict):
        letter.problem = "body is not a JSON object"
        return letter
    if queue_role == TASKS:
        letter.payload = body  # re-delivered as is: its shape is the range worker's business
        return letter
    if queue_role == FAILURES:
        _read_destination_record(letter, body)
    else:
        letter.payload = body
        letter.error_code = _attribute(message, "ERROR_CODE")
        letter.error_message = _attribute(message, "ERROR_MESSAGE")
        letter.rule_arn = _attribute(message, "RULE_ARN")
    if letter.payload is not None and not _looks_like_event(letter.payload):
        letter.problem = "payload is not an EventBridge event (no id / detail-type / detail)"
        letter.payload = None
    return letter


def _read_destination_record(letter: DeadLetter, record: Mapping[str, Any]) -> None:
    request = record.get("requestPayload")
    if not isinstance(request, dict):
        letter.problem = "not a Lambda destination record (no requestPayload object)"
        return
    letter.payload = request
    context = _mapping(record.get("requestContext"))
    response = _mapping(record.get("responsePayload"))
    letter.function_arn = _text(context.get("functionArn"))
    letter.error_code = _text(response.get("errorType")) or _text(context.get("condition"))
    letter.error_message = _text(response.get("errorMessage")) or _text(context.get("condition"))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _looks_like_event(payload: Mapping[str, Any]) -> bool:
    return isinstance(payload.get("id"), str) and "detail-type" in payload and "detail" in payload


@dataclass
class QueueReader:
    """Receives a queue's messages once each, holding them invisible until released or deleted."""

    sqs: Any
    url: str
    queue_role: str
    visibility_timeout: int = 300
    wait_seconds: int = 1  # a short long-poll: short polling may miss messages on AWS
    _held: dict[str, str] = field(default_factory=dict)  # message id -> latest receipt handle
    _seen: set[str] = field(default_factory=set)

    def batches(self, limit: int | None = None) -> Iterator[list[DeadLetter]]:
        """The new messages of each ReceiveMessage (at most 10 a call), parsed; each message at most
        once. Ends when a receive brings nothing new or `limit` messages were produced."""
        produced = 0
        while limit is None or produced < limit:
            wanted = _BATCH if limit is None else min(_BATCH, limit - produced)
            messages = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=wanted,
                VisibilityTimeout=self.visibility_timeout,
                WaitTimeSeconds=self.wait_seconds,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            fresh = []
            for message in messages:
                self._held[message["MessageId"]] = message["ReceiptHandle"]
                if message["MessageId"] not in self._seen:
                    self._seen.add(message["MessageId"])
                    fresh.append(message)
            if not fresh:
                return
            produced += len(fresh)
            yield [parse_message(message, self.queue_role) for message in fresh]

    def letters(self, limit: int | None = None) -> Iterator[DeadLetter]:
        """Each message at most once; ends when a receive brings nothing new or `limit` is reached."""
        for batch in self.batches(limit):
            yield from batch

    def delete(self, letter: DeadLetter) -> None:
        handle = self._held.pop(letter.message_id, letter.receipt_handle)
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=handle)

    def delete_batch(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        """Delete with DeleteMessageBatch, 10 a call. SQS reports each entry on its own, failures with
        HTTP 200 (API reference, DeleteMessageBatch: "check for batch errors even when the call returns
        an HTTP status code of 200"): returns message id -> "Code: Message" for each message SQS did not
        delete. Those stay held, so `release_all` makes them visible again like any other."""
        failed: dict[str, str] = {}
        for start in range(0, len(letters), _BATCH):
            chunk = {
                str(index): (letter.message_id, self._held.get(letter.message_id, letter.receipt_handle))
                for index, letter in enumerate(letters[start : start + _BATCH])
            }
            response = self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": entry_id, "ReceiptHandle": handle} for entry_id, (_, handle) in chunk.items()
                ],
            )
            for entry in response.get("Failed", []):
                message_id = chunk[entry["Id"]][0]
                failed[message_id] = f"{entry.get('Code', '?')}: {entry.get('Message', '')}".rstrip(": ")
            for message_id, _ in chunk.values():
                if message_id not in failed:
                    self._held.pop(message_id, None)
        return failed

    def release_all(self) -> None:
        """Make every held message visible again at once (visibility 0), e.g. after a peek."""
        held = list(self._held.items())
        self._held.clear()
        for start in range(0, len(held), _BATCH):
            entries = [
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, (_, handle) in enumerate(held[start : start + _BATCH])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)


def peek(sqs: Any, url: str, queue_role: str, *, limit: int) -> list[DeadLetter]:
    """Up to `limit` dead letters, left in the queue (released as soon as they are read)."""
    reader = QueueReader(sqs, url, queue_role, visibility_timeout=30)
    try:
        return list(reader.letters(limit))
    finally:
        reader.release_all()


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


def queue_depth(sqs: Any, url: str) -> QueueDepth:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return QueueDepth(
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def oldest_age_from_peek(
    sqs: Any, url: str, *, now: datetime | None = None, sample: int = 100
) -> float | None:
    """Age in seconds of the oldest of up to `sample` peeked messages (SentTimestamp).

    SQS has no "oldest message age" attribute; on AWS the CloudWatch metric is preferred (see
    `oldest_age_from_metrics`). Peeking is exact for queues up to `sample` messages and a lower bound
    beyond, because a standard queue returns messages in no particular order.
    """
    sent = [letter.sent_at for letter in peek(sqs, url, "peek", limit=sample) if letter.sent_at]
    if not sent:
        return None
    return ((now or datetime.now(UTC)) - min(sent)).total_seconds()


def oldest_age_from_metrics(cloudwatch: Any, url: str, *, now: datetime | None = None) -> float | None:
    """The latest `ApproximateAgeOfOldestMessage` datapoint of the last 15 minutes, or None."""
    end = now or datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": url.rstrip("/").rsplit("/", 1)[-1]}],
        StartTime=end - timedelta(minutes=15),
        EndTime=end,
        Period=60,
        Statistics=["Maximum"],
    ).get("Datapoints", [])
    if not points:
        return None
    return float(max(points, key=lambda point: point["Timestamp"])["Maximum"])
