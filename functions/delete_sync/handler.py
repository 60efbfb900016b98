"""Lambda entry point of the `delete-sync` consumer (S3 Object Deleted via EventBridge)."""

from __future__ import annotations

from typing import Any

from functions.core.domain.events import OBJECT_DELETED
from functions.core.use_cases.delete_sync import delete_object
from functions.core.wiring.object_event_handler import handle_object_event
from functions.core.wiring.observability import logger, metrics, traced_handler


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
@traced_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_object_event(
        event, context, consumer="delete-sync", detail_type=OBJECT_DELETED, use_case=delete_object
    )
