"""Lambda's asynchronous invocation: retries, event age, and the records sent to destinations.

An Event invocation is accepted at once; it is retried per MaximumRetryAttempts (0-2) after delays of
Lambda's 1 and 2 minutes on the local clock (`eventpipe.local.clock`); events older than
MaximumEventAgeInSeconds (on the same clock) are dropped; then the on-failure (or on-success)
destination, SQS or SNS, receives Lambda's invocation record through the one sender
(`eventpipe.local.senders`). Retries keep the request id, as on AWS. A function-level
DeadLetterConfig is not supported: moto does not store it (the stack uses on-failure destinations).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from eventpipe.local.clock import LocalClock
from eventpipe.local.lambda_runtime.config import (
    LATEST,
    AsyncConfig,
    FunctionConfig,
    FunctionNotFoundError,
)
from eventpipe.local.lambda_runtime.invoker import InvokeResult

log = logging.getLogger("eventpipe.local.lambda_runtime")

# Lambda retries a failed async invocation after about one minute, then after about two.
AWS_RETRY_DELAYS_SECONDS = (60.0, 120.0)


class DestinationSender(Protocol):
    def send_to_destination(self, destination_arn: str, body: str) -> None: ...


@dataclass
class AsyncEvent:
    request_id: str
    function_name: str
    payload: Any
    accepted_at: float = field(default_factory=time.monotonic)
    attempts: int = 0


class AsyncAttempts:
    """One delivery attempt of an async event, deciding between success, a retry and a destination."""

    def __init__(
        self,
        *,
        clock: LocalClock,
        function_config: Callable[[str], FunctionConfig],
        async_config: Callable[[str], AsyncConfig],
        invoke: Callable[[FunctionConfig, str, Any], InvokeResult],
        retry_later: Callable[[AsyncEvent, float], bool],
        sender: DestinationSender,
    ) -> None:
        self._clock = clock
        self._function_config, self._async_config = function_config, async_config
        self._invoke, self._retry_later, self._sender = invoke, retry_later, sender

    def attempt_once(self, event: AsyncEvent) -> bool:
        """One delivery attempt; True when a retry was scheduled (the event is still in flight)."""
        try:
            config = self._function_config(event.function_name)
        except FunctionNotFoundError:
            log.warning(
                "dropping async event %s: function %s was deleted", event.request_id, event.function_name
            )
            return False
        settings = self._async_config(event.function_name)
        max_age = self._clock.local_seconds(settings.maximum_event_age_seconds)
        if event.attempts and time.monotonic() - event.accepted_at > max_age:
            self._deliver_failure(config, settings, event, "EventAgeExceeded", None)
            return False
        result = self._invoke(config, event.request_id, event.payload)
        event.attempts += 1
        if result.function_error is None:
            if settings.on_success:
                self._send_record(settings.on_success, invocation_record(config, event, "Success", result))
            return False
        if event.attempts <= settings.maximum_retry_attempts:
            delays = AWS_RETRY_DELAYS_SECONDS
            delay = delays[min(event.attempts, len(delays)) - 1]
            return self._retry_later(event, self._clock.local_seconds(delay))
        self._deliver_failure(config, settings, event, "RetriesExhausted", result)
        return False

    def _deliver_failure(
        self,
        config: FunctionConfig,
        settings: AsyncConfig,
        event: AsyncEvent,
        condition: str,
        result: InvokeResult | None,
    ) -> None:
        if settings.on_failure:
            self._send_record(settings.on_failure, invocation_record(config, event, condition, result))
        else:
            log.warning("async event %s of %s discarded (%s)", event.request_id, config.name, condition)

    def _send_record(self, destination_arn: str, record: dict[str, Any]) -> None:
        service = destination_arn.split(":")[2] if destination_arn.count(":") >= 5 else ""
        if service not in ("sqs", "sns"):
            log.warning("destination %s is not supported locally; record dropped", destination_arn)
            return
        self._sender.send_to_destination(destination_arn, json.dumps(record))


def invocation_record(
    config: FunctionConfig, event: AsyncEvent, condition: str, result: InvokeResult | None
) -> dict[str, Any]:
    """Lambda's invocation record, as sent to an async destination."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": f"{config.arn}:{LATEST}",
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": event.payload,
    }
    if result is not None:
        response_context: dict[str, Any] = {"statusCode": result.status, "executedVersion": LATEST}
        if result.function_error:
            response_context["functionError"] = result.function_error
        record["responseContext"] = response_context
        record["responsePayload"] = json.loads(result.payload)
    return record
