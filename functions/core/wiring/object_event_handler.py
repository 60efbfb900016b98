"""The one shape every S3-object consumer handler has: parse the EventBridge event, refuse the wrong
kind without retrying, run one use case, and record its outcome. Handlers add only the Powertools
decorators, so each stays a few lines and they cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from functions.core.domain.events import InvalidEventError, ObjectEvent
from functions.core.use_cases.ports import Services
from functions.core.wiring.lambda_services import services_for
from functions.core.wiring.observability import record_invalid_event, record_outcome

UseCase = Callable[[Services, ObjectEvent], Any]


def handle_object_event(
    event: dict[str, Any], context: Any, *, consumer: str, detail_type: str, use_case: UseCase
) -> dict[str, Any]:
    """Run `use_case` on an S3 event of `detail_type`; malformed or misrouted events are logged and
    counted, never raised, because a retry cannot fix them."""
    try:
        object_event = ObjectEvent.from_eventbridge(event)
    except InvalidEventError as invalid:
        return record_invalid_event(str(invalid))
    if object_event.detail_type != detail_type:
        return record_invalid_event(
            f"{consumer} handles {detail_type} events only, not {object_event.detail_type}"
        )
    outcome = use_case(services_for(context), object_event)
    record_outcome(outcome)
    return asdict(outcome)
