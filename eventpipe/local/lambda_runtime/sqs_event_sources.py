"""Lambda's SQS event source mappings: pollers that read a queue and invoke a function synchronously.

moto stores event source mappings but runs them inline inside SendMessage with a made-up event
(turned off: `moto_patches.awslambda`, H13). Here each enabled mapping on an SQS queue gets a poller
that does what Lambda's pollers do ([Using Lambda with Amazon SQS], [scaling], [error handling]):

- long-polls the queue (ReceiveMessage with every attribute) for up to BatchSize messages, gathering
  more receives within MaximumBatchingWindowInSeconds when BatchSize is above 10; the queue's own
  visibility timeout applies (no VisibilityTimeout is passed, as Lambda passes none);
- keeps at most MaximumConcurrency batches in invocation (ScalingConfig; without it Lambda starts
  with five), never more than the runtime's warm environments per function;
- invokes the function synchronously (`LambdaRuntime.invoke_sync`) with Lambda's SQS event;
- deletes what succeeded: every message, or with ReportBatchItemFailures every message not listed in
  `batchItemFailures`; a function error, or a batch response Lambda calls invalid, deletes none;
- leaves failures to become visible again when the visibility timeout ends, counted from the receive
  on the local clock (`clock.py`): a ChangeMessageVisibility 0 scheduled on `clock.Scheduler`, never
  before the invocation ended (on AWS the function timeout is at most the visibility timeout);
- SQS itself (moto, checked by the tests) moves a message received maxReceiveCount times to the
  queue's dead-letter queue at the next receive.

[Using Lambda with Amazon SQS]: https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
[scaling]: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
[error handling]: https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from eventpipe.local.clock import LocalClock, Scheduler
from eventpipe.local.lambda_runtime.invoker import InvokeResult

log = logging.getLogger("eventpipe.local.lambda_runtime.sqs")

# Lambda starts with five concurrent batches on a standard queue ([scaling]).
AWS_INITIAL_CONCURRENT_BATCHES = 5
RECEIVE_LIMIT = 10  # messages per ReceiveMessage (SQS API limit)
# Real seconds one long poll waits: short enough to notice a stop or a disabled mapping quickly, long
# enough that an idle mapping costs one request per second, not a busy loop.
POLL_WAIT_SECONDS = 1
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


@dataclass(frozen=True, slots=True)
class SqsMapping:
    """One event source mapping on an SQS queue, as the Lambda API reports it."""

    uuid: str
    function_arn: str
    queue_arn: str
    batch_size: int = 10
    batching_window_seconds: int = 0
    enabled: bool = True
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None

    @classmethod
    def from_api(cls, configuration: dict[str, Any]) -> SqsMapping | None:
        """The mapping of a ListEventSourceMappings entry; None when its source is not SQS."""
        source = str(configuration.get("EventSourceArn", ""))
        if source.split(":")[2:3] != ["sqs"]:
            return None
        scaling = configuration.get("ScalingConfig") or {}
        maximum = scaling.get("MaximumConcurrency")
        return cls(
            uuid=str(configuration["UUID"]),
            function_arn=str(configuration["FunctionArn"]),
            queue_arn=source,
            batch_size=int(configuration.get("BatchSize") or 10),
            batching_window_seconds=int(configuration.get("MaximumBatchingWindowInSeconds") or 0),
            enabled=configuration.get("State", "Enabled") in ("Enabled", "Enabling", "Updating"),
            report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES
            in (configuration.get("FunctionResponseTypes") or ()),
            maximum_concurrency=int(maximum) if maximum else None,
        )

    @property
    def function_name(self) -> str:
        return self.function_arn.split(":")[6] if self.function_arn.count(":") >= 6 else self.function_arn


@dataclass(slots=True)
class MappingStats:
    invocations: int = 0
    function_errors: int = 0
    deleted: int = 0
    retried: int = 0  # messages left to become visible again
    peak_concurrency: int = 0


class SqsEventSources:
    """Every SQS event source mapping of the emulator's Lambda API, each with its `_Poller`."""

    def __init__(
        self,
        *,
        sqs: Any,
        lambda_client: Any,
        endpoint_url: str,
        region: str,
        invoke: Callable[[str, Any], InvokeResult],
        clock: LocalClock,
        concurrency_cap: int,
    ) -> None:
        self.sqs, self._lambda = sqs, lambda_client
        self._endpoint, self.region = endpoint_url.rstrip("/"), region
        self.invoke, self.clock, self._cap = invoke, clock, concurrency_cap
        self._pollers: dict[str, _Poller] = {}
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stopping = False
        # Mapping refreshes and visibility releases; the invocations run on the executor.
        self.scheduler = Scheduler(name="sqs-event-sources")
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sqs-invoke")

    def changed(self) -> None:
        """A mapping was created, updated or deleted (called by the moto patch): refresh soon."""
        self.scheduler.call_later(0.0, self.refresh)

    def refresh(self) -> None:
        """Start, update and stop pollers to match ListEventSourceMappings (one refresh at a time, so
        an older listing never undoes a newer one)."""
        with self._refresh_lock:
            mappings: dict[str, SqsMapping] = {}
            for page in self._lambda.get_paginator("list_event_source_mappings").paginate():
                for configuration in page.get("EventSourceMappings", []):
                    mapping = SqsMapping.from_api(configuration)
                    if mapping is not None:
                        mappings[mapping.uuid] = mapping
            with self._lock:
                if self._stopping:
                    return
                removed = [self._pollers.pop(uuid) for uuid in set(self._pollers) - set(mappings)]
                for uuid, mapping in mappings.items():
                    poller = self._pollers.get(uuid)
                    if poller is None:
                        self._pollers[uuid] = _Poller(self, mapping)
                        log.info("polling %s for %s", mapping.queue_arn, mapping.function_name)
                    else:
                        poller.update(mapping)
            for poller in removed:
                poller.stop()

    def busy(self, horizon: float) -> bool:
        """True while a batch is in invocation, a queue holds visible messages (or messages received
        but not yet handed to an invocation), or a visibility release is due within `horizon`."""
        if self.scheduler.busy(horizon):
            return True
        with self._lock:
            pollers = list(self._pollers.values())
        return any(poller.busy() for poller in pollers)

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            pollers = list(self._pollers.values())
        return [poller.status() for poller in pollers]

    def shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            pollers, self._pollers = list(self._pollers.values()), {}
        for poller in pollers:
            poller.stop()
        self.scheduler.shutdown()
        # Batches in invocation end when the runtime shuts down next (their workers are stopped).
        self.executor.shutdown(wait=False, cancel_futures=True)

    # ---- what the pollers share ---------------------------------------------------------------
    def queue_url(self, queue_arn: str) -> str:
        account, name = queue_arn.split(":")[4:6]
        return f"{self._endpoint}/{account}/{name}"

    def concurrency(self, mapping: SqsMapping) -> int:
        return min(mapping.maximum_concurrency or AWS_INITIAL_CONCURRENT_BATCHES, self._cap)


class _Poller:
    """One mapping's poll loop (a thread that long-polls) and its in-flight batches."""

    def __init__(self, owner: SqsEventSources, mapping: SqsMapping) -> None:
        self._owner = owner
        self.mapping = mapping
        self.stats = MappingStats()
        self._cond = threading.Condition()
        self._active = 0  # batches received and not yet settled (deleted / release scheduled)
        self._invoking = 0  # batches in an invocation now
        self._releasing = 0  # messages whose visibility release is scheduled and not yet done
        self._stopped = False
        self._polling = False  # a ReceiveMessage is under way
        self._thread = threading.Thread(target=self._run, name=f"sqs-poller-{mapping.uuid[:8]}", daemon=True)
        self._thread.start()

    def update(self, mapping: SqsMapping) -> None:
        with self._cond:
            self.mapping = mapping
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=POLL_WAIT_SECONDS + 5)

    def busy(self) -> bool:
        with self._cond:
            if self._active - int(self._polling):  # a received batch not yet settled
                return True
            if not self.mapping.enabled or self._stopped:
                return False
            releasing, url = self._releasing, self._owner.queue_url(self.mapping.queue_arn)
        try:
            attributes = self._owner.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except Exception:  # the queue is gone: nothing for this mapping to do
            return False
        visible = int(attributes.get("ApproximateNumberOfMessages", 0))
        in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        # In flight but not waiting for a release: just received by this poller (or another client).
        return visible > 0 or in_flight > releasing

    def status(self) -> dict[str, Any]:
        with self._cond:
            mapping, stats, active, polling = self.mapping, replace(self.stats), self._active, self._polling
        return {
            "uuid": mapping.uuid,
            "function": mapping.function_name,
            "queue": mapping.queue_arn.rsplit(":", 1)[-1],
            "state": "Enabled" if mapping.enabled else "Disabled",
            "batch_size": mapping.batch_size,
            "maximum_concurrency": self._owner.concurrency(mapping),
            "polling": polling,
            "in_flight_batches": active - int(polling),
            "invocations": stats.invocations,
            "function_errors": stats.function_errors,
            "deleted": stats.deleted,
            "retried": stats.retried,
            "peak_concurrency": stats.peak_concurrency,
        }

    # ---- the poll loop ------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                # A disabled mapping, or every slot taken: wait for a change, never spin.
                while not self._stopped and (
                    not self.mapping.enabled or self._active >= self._owner.concurrency(self.mapping)
                ):
                    self._cond.wait()
                if self._stopped:
                    return
                mapping = self.mapping
                self._active += 1
                self._polling = True
            batch: list[dict[str, Any]] = []
            try:
                batch = self._receive(mapping)
            except Exception as error:
                log.warning("receiving from %s failed: %s", mapping.queue_arn, error)
                with self._cond:
                    self._cond.wait(1.0)  # back off a failing queue (deleted, ...) without spinning
            finally:
                with self._cond:
                    self._polling = False
            if not batch:
                self._settled()
                continue
            received_at = time.monotonic()  # the visibility timeout runs from the receive
            try:
                self._owner.executor.submit(self._process, mapping, batch, received_at)
            except RuntimeError:  # shut down meanwhile: the messages become visible again on their own
                self._settled()
                return

    def _receive(self, mapping: SqsMapping) -> list[dict[str, Any]]:
        url = self._owner.queue_url(mapping.queue_arn)
        batch: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self._owner.clock.local_seconds(mapping.batching_window_seconds)
        wait = POLL_WAIT_SECONDS
        while len(batch) < mapping.batch_size:
            answer = self._owner.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(RECEIVE_LIMIT, mapping.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = answer.get("Messages", [])
            batch.extend(received)
            # Nothing (more) available, or the batching window is over: invoke with what there is.
            if not received or time.monotonic() >= window_ends:
                break
            wait = 0
        return batch

    def _process(self, mapping: SqsMapping, batch: list[dict[str, Any]], received_at: float) -> None:
        failed: list[dict[str, Any]] = batch
        try:
            event = {"Records": [sqs_record(m, mapping.queue_arn, self._owner.region) for m in batch]}
            with self._cond:
                self.stats.invocations += 1
                self._invoking += 1
                self.stats.peak_concurrency = max(self.stats.peak_concurrency, self._invoking)
            try:
                result = self._owner.invoke(mapping.function_arn, event)
            finally:
                with self._cond:
                    self._invoking -= 1
            if result.function_error is not None:
                with self._cond:
                    self.stats.function_errors += 1
            else:
                failed = failed_messages(batch, result.payload, mapping.report_batch_item_failures)
            succeeded = [m for m in batch if m not in failed]
            self._delete(mapping, succeeded)
        except Exception:
            log.exception("batch of %s for %s failed in the poller", mapping.queue_arn, mapping.function_name)
        finally:
            self._release_later(mapping, failed, received_at)
            self._settled()

    def _delete(self, mapping: SqsMapping, messages: list[dict[str, Any]]) -> None:
        url = self._owner.queue_url(mapping.queue_arn)
        for start in range(0, len(messages), RECEIVE_LIMIT):
            chunk = messages[start : start + RECEIVE_LIMIT]
            answer = self._owner.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
            with self._cond:
                self.stats.deleted += len(answer.get("Successful", []))

    def _release_later(self, mapping: SqsMapping, messages: list[dict[str, Any]], received_at: float) -> None:
        """Make `messages` visible again when the queue's visibility timeout (local clock) has passed
        since they were received."""
        if not messages:
            return
        url = self._owner.queue_url(mapping.queue_arn)
        timeout = int(
            self._owner.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
                "Attributes"
            ].get("VisibilityTimeout", 30)
        )
        delay = max(0.0, received_at + self._owner.clock.local_seconds(timeout) - time.monotonic())
        with self._cond:
            self.stats.retried += len(messages)
            self._releasing += len(messages)

        def release() -> None:
            try:
                for message in messages:
                    try:
                        self._owner.sqs.change_message_visibility(
                            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                        )
                    except Exception as error:  # deleted or moved meanwhile: nothing to release
                        log.info("could not release message %s: %s", message.get("MessageId"), error)
            finally:
                with self._cond:
                    self._releasing -= len(messages)

        if not self._owner.scheduler.call_later(delay, release):
            with self._cond:  # shut down: the messages become visible when moto's own timer ends
                self._releasing -= len(messages)

    def _settled(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's record for one received message ([Using Lambda with Amazon SQS], example event)."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute in the event's camelCase form (binary values base64-encoded)."""
    converted: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [_b64(item) for item in value.get("BinaryListValues", [])],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = _b64(value["BinaryValue"])
    return converted


def _b64(value: bytes | str) -> str:
    return base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode()


def failed_messages(
    batch: list[dict[str, Any]], payload: bytes, report_batch_item_failures: bool
) -> list[dict[str, Any]]:
    """The messages of a successful invocation that must not be deleted ([error handling]).

    Without ReportBatchItemFailures the response is ignored: none. With it, an empty or null response or
    `batchItemFailures` list means none; the listed message ids otherwise. Lambda treats the whole batch
    as failed on an invalid JSON response, or an itemIdentifier that is empty, null, under another key
    name or not a message id of the batch."""
    if not report_batch_item_failures:
        return []
    try:
        response = json.loads(payload or b"null")
    except ValueError:
        return batch
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:
        return []
    if not isinstance(failures, list):
        return batch
    by_id = {m["MessageId"]: m for m in batch}
    listed: list[dict[str, Any]] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in by_id:
            return batch
        if by_id[identifier] not in listed:
            listed.append(by_id[identifier])
    return listed


__all__ = ["MappingStats", "SqsEventSources", "SqsMapping", "failed_messages", "sqs_record"]
