"""Reading dead letters: parsing both queue formats, and peeking without taking anything away."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ops_fakes import Deployed, s3_event

from eventpipe.ops.deadletters import (
    DLQ,
    FAILURES,
    oldest_age_from_peek,
    parse_message,
    peek,
    queue_depth,
)

RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/eventpipe-dev-bus/eventpipe-dev-ingest"


def message(
    body: Any, attributes: dict[str, str] | None = None, sent_ms: int = 1795687200000
) -> dict[str, Any]:
    return {
        "MessageId": "m-1",
        "ReceiptHandle": "h-1",
        "Body": body if isinstance(body, str) else json.dumps(body),
        "Attributes": {"SentTimestamp": str(sent_ms), "ApproximateReceiveCount": "2"},
        "MessageAttributes": {
            k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()
        },
    }


def test_rule_dlq_message_yields_the_event_and_eventbridges_reason() -> None:
    event = s3_event("data/my+file.jsonl", event_id="e-1")
    attributes = {"ERROR_CODE": "SDK_CLIENT_ERROR", "ERROR_MESSAGE": "Throttled", "RULE_ARN": RULE_ARN}

    letter = parse_message(message(event, attributes), DLQ)

    assert letter.payload == event
    assert (letter.event_id, letter.object_key) == ("e-1", "data/my+file.jsonl")
    assert (letter.error_code, letter.error_message, letter.rule_arn) == (
        "SDK_CLIENT_ERROR",
        "Throttled",
        RULE_ARN,
    )
    assert letter.sent_at == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert letter.receive_count == 2
    assert letter.problem is None


def test_failure_record_yields_the_request_payload_and_the_function_error() -> None:
    event = s3_event("a.json", event_id="e-2")
    record = {
        "requestContext": {
            "functionArn": "arn:aws:lambda:us-east-1:1:function:ingest:$LATEST",
            "condition": "RetriesExhausted",
        },
        "requestPayload": event,
        "responsePayload": {"errorType": "ValueError", "errorMessage": "boom"},
    }

    letter = parse_message(message(record), FAILURES)

    assert letter.payload == event
    assert (letter.error_code, letter.error_message) == ("ValueError", "boom")
    assert letter.function_arn == "arn:aws:lambda:us-east-1:1:function:ingest:$LATEST"


def test_failure_record_without_response_payload_reports_the_condition() -> None:
    record = {"requestContext": {"condition": "EventAgeExceeded"}, "requestPayload": s3_event("a.json")}

    letter = parse_message(message(record), FAILURES)

    assert letter.error_code == letter.error_message == "EventAgeExceeded"


def test_replayed_events_keep_their_replay_name() -> None:
    letter = parse_message(message({**s3_event("a.json"), "replay-name": "r-1"}), DLQ)

    assert letter.replay_name == "r-1"


def test_bad_messages_become_problems_never_exceptions() -> None:
    cases = {
        "not json": (DLQ, "{"),
        "array": (DLQ, [1, 2]),
        "not an event": (DLQ, {"hello": "world"}),
        "record without payload": (FAILURES, {"requestContext": {}}),
        "record with non-event payload": (FAILURES, {"requestPayload": {"x": 1}}),
    }
    for body in cases.values():
        letter = parse_message(message(body[1]), body[0])
        assert letter.payload is None
        assert letter.problem


def test_peek_shows_letters_and_leaves_them_visible(deployed: Deployed) -> None:
    for n in range(3):
        deployed.add_dead_letter("Audit", s3_event(f"k{n}.json"))

    letters = peek(deployed.sqs, deployed.url("AuditDlqUrl"), DLQ, limit=10)

    assert sorted(letter.object_key or "" for letter in letters) == ["k0.json", "k1.json", "k2.json"]
    assert {letter.error_code for letter in letters} == {"Throttling"}
    depth = queue_depth(deployed.sqs, deployed.url("AuditDlqUrl"))
    assert (depth.visible, depth.in_flight) == (3, 0)


def test_peek_limit_caps_what_is_read(deployed: Deployed) -> None:
    for n in range(5):
        deployed.add_dead_letter("Audit", s3_event(f"k{n}.json"))

    assert len(peek(deployed.sqs, deployed.url("AuditDlqUrl"), DLQ, limit=2)) == 2


def test_oldest_age_comes_from_the_oldest_sent_timestamp(deployed: Deployed) -> None:
    deployed.add_dead_letter("Audit", s3_event("k.json"))
    later = datetime.now(UTC) + timedelta(hours=1)

    age = oldest_age_from_peek(deployed.sqs, deployed.url("AuditDlqUrl"), now=later)

    assert age is not None
    assert 3590 < age <= 3600 + 5
    assert oldest_age_from_peek(deployed.sqs, deployed.url("IngestDlqUrl")) is None
