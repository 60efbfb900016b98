"""Lambda entry point of the `ingest` consumer (S3 Object Created via EventBridge)."""

from __future__ import annotations

from typing import Any

from functions.core.domain.events import OBJECT_CREATED
from functions.core.use_cases.ingest import ingest_object
from functions.core.wiring.object_event_handler import handle_object_event
from functions.core.wiring.observability import logger, metrics, traced_handler


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
@traced_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_object_event(
        event, context, consumer="ingest", detail_type=OBJECT_CREATED, use_case=ingest_object
    )
