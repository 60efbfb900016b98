"""Powertools logger, metrics and tracer, created once per execution environment.

Tracing: the functions run with Lambda's active tracing, which records a segment per invocation
(initialization, invocation, overhead) without any SDK in the function. Powertools' Tracer (the X-Ray
SDK) adds subsegments per AWS call and annotations, at a cold-start cost (`make bench`, cold start:
creating it and patching botocore). The stack sets POWERTOOLS_TRACE_DISABLED=true, so the SDK is never
loaded; set it to false on a function to get the subsegments. Even then the tracer is created on the
first traced call, and only where X-Ray can receive segments, so tests and local runs never pay for it.
(Lambda developer guide, "Visualize Lambda function invocations using AWS X-Ray": Lambda emits its
service segments for every traced invocation; AWS calls need the SDK.)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

from functions.core.wiring.env import POWERTOOLS_TRACE_DISABLED

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

logger = Logger()
metrics = Metrics()

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_active() -> bool:
    """True inside Lambda with active tracing (the runtime sets the daemon address) unless disabled."""
    disabled = os.environ.get(POWERTOOLS_TRACE_DISABLED, "").lower() in {"1", "true"}
    return (
        "AWS_XRAY_DAEMON_ADDRESS" in os.environ and "AWS_LAMBDA_FUNCTION_NAME" in os.environ and not disabled
    )


@functools.cache
def get_tracer() -> Tracer | None:
    if not tracing_active():
        return None
    from aws_lambda_powertools import Tracer  # deferred: imports the X-Ray SDK

    return Tracer()


def traced_handler(handler: Handler) -> Handler:
    """`Tracer.capture_lambda_handler`, decided and bound at the first invocation instead of at import."""
    bound: list[Callable[..., Any]] = []

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        if not bound:
            tracer = get_tracer()
            bound.append(tracer.capture_lambda_handler(handler) if tracer else handler)
        return bound[0](event, context)

    return wrapper  # type: ignore[return-value]


@contextmanager
def span(name: str) -> Iterator[None]:
    """An X-Ray subsegment around a block when tracing is active; free otherwise."""
    tracer = get_tracer()
    if tracer is None:
        yield
        return
    with tracer.provider.in_subsegment(name=name):
        yield


def record_outcome(outcome: Any) -> None:
    """Log an `Outcome` with structured fields and emit its metrics (one place for every consumer)."""
    from aws_lambda_powertools.metrics import MetricUnit

    fields = {
        "status": outcome.status,
        "object": outcome.object_id,
        "records_written": outcome.records_written,
        "records_rejected": outcome.records_rejected,
        "items_removed": outcome.items_removed,
        "write_requests": outcome.write_requests,
        "rejects_report": outcome.report_key,
        "detail": outcome.detail,
    }
    logger.info("event processed", extra=fields)
    counts = {
        "RecordsIngested": outcome.records_written,
        "RecordsRejected": outcome.records_rejected,
        "ItemsRemoved": outcome.items_removed,
        "ObjectsSkippedStale": int(outcome.status in {"stale", "superseded"}),
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def record_invalid_event(reason: str) -> dict[str, str]:
    """A malformed event cannot be fixed by retrying: log it, count it, and let the invocation succeed."""
    from aws_lambda_powertools.metrics import MetricUnit

    logger.error("ignored event", extra={"reason": reason})
    metrics.add_metric(name="EventsIgnored", unit=MetricUnit.Count, value=1)
    return {"status": "invalid", "detail": reason}
