"""Lambda entry point of the range worker: one range of a fan-out per SQS message (fan_out.py).

Partial batch responses (Powertools batch utility, `ReportBatchItemFailures` on the event source): a
range that fails is returned to the queue alone, retried after its visibility timeout, and moved to the
work queue's DLQ after maxReceiveCount receives. A message that is not a range task is logged, counted
and dropped: no retry can fix it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.core.domain.range_task import InvalidTaskError, RangeTask
from functions.core.use_cases.range_ingest import ingest_range
from functions.core.wiring.lambda_services import services_for
from functions.core.wiring.observability import (
    logger,
    metrics,
    record_invalid_event,
    record_outcome,
    traced_handler,
)

_processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@traced_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    services = services_for(context)

    def handle(record: SQSRecord) -> None:
        try:
            task = RangeTask.from_json(record.body)
        except InvalidTaskError as invalid:
            record_invalid_event(str(invalid))
            return
        record_outcome(ingest_range(services, task))

    response = process_partial_response(
        event=event, record_handler=handle, processor=_processor, context=context
    )
    return dict(response)
