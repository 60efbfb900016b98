"""Redrive: re-deliver each dead letter to the one consumer that failed, never to the whole bus (and a
dead range task to the range work queue).

Publishing dead letters back to the bus (what most tools do) makes every other rule see the event
again. Here the event goes straight to the failed consumer's target, with the same API EventBridge
uses for that kind of target, and a message is deleted only after its re-delivery was accepted: an
interruption at any point leaves every undelivered message in its queue (at-least-once; consumers
are idempotent).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from eventpipe.contract.errors import EventpipeError
from eventpipe.ops.context import ConsumerResources, OpsContext, TargetKind
from eventpipe.ops.deadletters import FAILURES, DeadLetter, QueueReader, queue_depth

REDRIVEN = "redriven"
FAILED = "failed"
SKIPPED = "skipped"
WOULD_REDRIVE = "would-redrive"


class DeliveryError(Exception):
    """The target refused or did not accept the re-delivery; the message stays in its queue."""


class Deliverer(Protocol):
    """Hands one event to a consumer's target; returns only when the target accepted it."""

    @property
    def target(self) -> str: ...

    def deliver(self, event: dict[str, Any]) -> None: ...


@dataclass
class LambdaDeliverer:
    """Asynchronous Invoke, like EventBridge: accepted means HTTP 202 (queued for the function)."""

    client: Any
    target: str

    def deliver(self, event: dict[str, Any]) -> None:
        response = self.client.invoke(
            FunctionName=self.target, InvocationType="Event", Payload=json.dumps(event).encode()
        )
        if response.get("StatusCode") != 202:
            raise DeliveryError(f"Invoke returned status {response.get('StatusCode')}")


@dataclass
class SqsDeliverer:
    """SendMessage with the event as body, as an EventBridge SQS target delivers it."""

    client: Any
    target: str  # queue URL

    def deliver(self, event: dict[str, Any]) -> None:
        self.client.send_message(QueueUrl=self.target, MessageBody=json.dumps(event))


@dataclass
class SnsDeliverer:
    client: Any
    target: str  # topic ARN

    def deliver(self, event: dict[str, Any]) -> None:
        self.client.publish(TopicArn=self.target, Message=json.dumps(event))


@dataclass
class StepFunctionsDeliverer:
    client: Any
    target: str  # state machine ARN

    def deliver(self, event: dict[str, Any]) -> None:
        self.client.start_execution(stateMachineArn=self.target, input=json.dumps(event))


@dataclass
class BusDeliverer:
    """PutEvents to the target bus. PutEvents reports per-entry failures with HTTP 200, so the
    FailedEntryCount decides. (AWS reserves `aws.*` sources for itself: such events are refused.)"""

    client: Any
    target: str  # bus ARN

    def deliver(self, event: dict[str, Any]) -> None:
        entry: dict[str, Any] = {
            "EventBusName": self.target,
            "Source": event.get("source", ""),
            "DetailType": event.get("detail-type", ""),
            "Detail": json.dumps(event.get("detail", {})),
            "Resources": list(event.get("resources", [])),
        }
        response = self.client.put_events(Entries=[entry])
        if response.get("FailedEntryCount", 0):
            failed = response["Entries"][0]
            raise DeliveryError(f"PutEvents: {failed.get('ErrorCode')}: {failed.get('ErrorMessage')}")


def deliverer_for(ctx: OpsContext, consumer: ConsumerResources) -> Deliverer:
    """The deliverer matching the consumer's target kind (from its `<P>TargetArn` output); the range
    worker's dead tasks go back to its work queue, whose event source hands them to the worker again."""
    if consumer.work_queue_url:
        return SqsDeliverer(ctx.client("sqs"), consumer.work_queue_url)
    if not consumer.target_arn:
        raise EventpipeError(f"consumer {consumer.name!r} has no TargetArn output in {ctx.stack}")
    arn = consumer.target_arn
    match consumer.kind:
        case TargetKind.LAMBDA:
            return LambdaDeliverer(ctx.client("lambda"), consumer.function_name or arn)
        case TargetKind.SQS:
            _, _, _, _, account, queue_name = arn.split(":", 5)
            sqs = ctx.client("sqs")
            url = sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            return SqsDeliverer(sqs, url)
        case TargetKind.SNS:
            return SnsDeliverer(ctx.client("sns"), arn)
        case TargetKind.SFN:
            return StepFunctionsDeliverer(ctx.client("stepfunctions"), arn)
        case _:
            return BusDeliverer(ctx.client("events"), arn)


@dataclass(frozen=True)
class Outcome:
    queue_role: str
    message_id: str
    event_id: str | None
    object_key: str | None
    result: str
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue_role,
            "messageId": self.message_id,
            "eventId": self.event_id,
            "objectKey": self.object_key,
            "result": self.result,
            "reason": self.reason,
        }


@dataclass
class RedriveSummary:
    consumer: str
    target: str
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.result == result)

    @property
    def ok(self) -> bool:
        return self.count(FAILED) == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "target": self.target,
            "dryRun": self.dry_run,
            "redriven": self.count(REDRIVEN),
            "wouldRedrive": self.count(WOULD_REDRIVE),
            "failed": self.count(FAILED),
            "skipped": self.count(SKIPPED),
            "messages": [outcome.as_json() for outcome in self.outcomes],
        }


# Deliveries in flight at once. Small on purpose: a redrive should drain a queue quickly without
# becoming a burst that throttles the consumer it is trying to help (each delivery is one API call).
CONCURRENCY = 4


@dataclass
class Redrive:
    """Drains a consumer's dead-letter queues into its target at queue speed.

    Each ReceiveMessage brings up to 10 messages; their deliveries run `concurrency` at a time; the
    accepted ones are then deleted with one DeleteMessageBatch. A message is deleted only after its
    own delivery was accepted, so an interruption (Ctrl-C, a crash) at any point leaves every
    undelivered message in its queue; at worst a delivered one is delivered again (at-least-once).
    """

    sqs: Any
    consumer: ConsumerResources
    deliverer: Deliverer
    dry_run: bool = False
    visibility_timeout: int = 300
    wait_seconds: int = 1
    concurrency: int = CONCURRENCY
    on_outcome: Callable[[Outcome], None] | None = None

    def expected(self, *, limit: int | None = None) -> int:
        """How many messages a run should handle, for a progress total: the queues' visible depth
        (ApproximateNumberOfMessages, approximate by nature), capped by `limit`."""
        total = sum(queue_depth(self.sqs, url).visible for url in self.consumer.queues.values())
        return total if limit is None else min(total, limit)

    def run(self, *, limit: int | None = None) -> RedriveSummary:
        summary = RedriveSummary(self.consumer.name, self.deliverer.target, self.dry_run)
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency), thread_name_prefix="redrive") as pool:
            for role, url in self.consumer.queues.items():
                remaining = None if limit is None else limit - len(summary.outcomes)
                if remaining is not None and remaining <= 0:
                    break
                reader = QueueReader(self.sqs, url, role, self.visibility_timeout, self.wait_seconds)
                try:
                    for batch in reader.batches(remaining):
                        outcomes, interruption = self._handle_batch(pool, reader, batch)
                        for outcome in outcomes:
                            summary.outcomes.append(outcome)
                            if self.on_outcome:
                                self.on_outcome(outcome)
                        if interruption is not None:
                            raise interruption
                finally:
                    # Failed, skipped and dry-run messages (and, after an interruption, everything not
                    # yet deleted) become visible again now rather than after the visibility timeout.
                    reader.release_all()
        return summary

    def _handle_batch(
        self, pool: ThreadPoolExecutor, reader: QueueReader, batch: list[DeadLetter]
    ) -> tuple[list[Outcome], BaseException | None]:
        """The outcomes of one received batch (in receive order), and the interruption to re-raise
        once the deliveries already accepted are deleted, if one came."""

        def outcome(letter: DeadLetter, result: str, reason: str | None = None) -> Outcome:
            return Outcome(
                letter.queue_role, letter.message_id, letter.event_id, letter.object_key, result, reason
            )

        results: dict[str, Outcome] = {}
        to_deliver: list[tuple[DeadLetter, dict[str, Any]]] = []
        for letter in batch:
            mismatch = self._foreign(letter)
            if letter.payload is None or mismatch:
                results[letter.message_id] = outcome(letter, SKIPPED, letter.problem or mismatch)
            elif self.dry_run:
                results[letter.message_id] = outcome(letter, WOULD_REDRIVE)
            else:
                to_deliver.append((letter, letter.payload))
        deliveries: list[tuple[DeadLetter, Future[None]]] = []
        interruption: BaseException | None = None
        try:
            for letter, payload in to_deliver:
                deliveries.append((letter, pool.submit(self.deliverer.deliver, payload)))
            wait([future for _, future in deliveries])
        except BaseException as exc:  # Ctrl-C here: settle what was handed over, then stop
            interruption = exc
            for _, future in deliveries:
                future.cancel()  # not started yet: never delivered, stays in the queue
            wait([future for _, future in deliveries])
        accepted: list[DeadLetter] = []
        for letter, future in deliveries:
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                accepted.append(letter)
            elif isinstance(error, (DeliveryError, ClientError, BotoCoreError)):
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                results[letter.message_id] = outcome(letter, FAILED, reason)
            elif interruption is None:
                interruption = error  # KeyboardInterrupt or a bug in a worker: stop after this batch
        not_deleted = reader.delete_batch(accepted) if accepted else {}
        for letter in accepted:
            problem = not_deleted.get(letter.message_id)
            results[letter.message_id] = (
                outcome(letter, REDRIVEN)
                if problem is None
                else outcome(
                    letter,
                    FAILED,
                    f"delivered, but not deleted ({problem}): a next redrive delivers it again",
                )
            )
        return [results[letter.message_id] for letter in batch if letter.message_id in results], interruption

    def _foreign(self, letter: DeadLetter) -> str | None:
        """A dead letter that names another rule / function is not this consumer's to re-deliver."""
        if letter.rule_arn and self.consumer.rule_arn and letter.rule_arn != self.consumer.rule_arn:
            return f"dead letter of rule {letter.rule_arn}, not of this consumer"
        if letter.queue_role == FAILURES and letter.function_arn and self.consumer.function_name:
            function = letter.function_arn.split(":")[6] if letter.function_arn.count(":") >= 6 else ""
            if function and function != self.consumer.function_name.rsplit(":", 1)[-1]:
                return f"failure record of function {function}, not of this consumer"
        return None
