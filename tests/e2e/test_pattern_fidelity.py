"""Our pattern engine against EventBridge's own: every unit case of tests/unit/contract/test_patterns.py is
replayed through the `TestEventPattern` API, and both must answer the same.

Runs only with EVENTPIPE_E2E=1 and AWS credentials (no stack needed). TestEventPattern requires the
envelope fields id, account, source, time, region, resources and detail-type
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_TestEventPattern.html): events of the
unit cases that lack them get neutral values, and a case whose pattern names such a missing field is
left out (the envelope would change its answer).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import _skip_reason
from tests.unit.contract.test_patterns import MATCH_CASES

ENVELOPE: dict[str, Any] = {
    "id": "00000000-0000-0000-0000-000000000000",
    "account": "111122223333",
    "source": "eventpipe.pattern-fidelity",
    "time": "2026-11-30T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail-type": "pattern fidelity",
}

CASES = [
    case
    for case in MATCH_CASES
    if not any(field in json.dumps(case[1]) and field not in case[2] for field in ENVELOPE)
]


@pytest.fixture(scope="module")
def events() -> Any:
    session = boto3.session.Session()
    reason = _skip_reason(session)
    if reason:
        pytest.skip(reason)
    return session.client("events")


@pytest.mark.parametrize(("name", "pattern", "event", "expected"), CASES, ids=[c[0] for c in CASES])
def test_eventbridge_agrees_with_our_pattern_engine(
    events: Any, name: str, pattern: dict[str, Any], event: dict[str, Any], expected: bool
) -> None:
    answer = events.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(ENVELOPE | event))
    assert answer["Result"] is expected, f"{name}: EventBridge says {answer['Result']}, we say {expected}"
