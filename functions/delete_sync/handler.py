"""Lambda entry point of the `delete-sync` consumer (S3 Object Deleted via EventBridge)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from functions.core.delete_sync import delete_object
from functions.core.events import InvalidEventError, ObjectEvent
from functions.core.observability import (
    logger,
    metrics,
    record_invalid_event,
    record_outcome,
    traced_handler,
)
from functions.core.runtime import services_for


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
@traced_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        object_event = ObjectEvent.from_eventbridge(event)
    except InvalidEventError as invalid:
        return record_invalid_event(str(invalid))
    if not object_event.is_deleted:
        return record_invalid_event(
            "delete-sync handles Object Deleted events only, not " + object_event.detail_type
        )
    outcome = delete_object(services_for(context), object_event)
    record_outcome(outcome)
    return asdict(outcome)
