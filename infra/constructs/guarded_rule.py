"""A rule whose every target has a dead-letter queue, an explicit retry policy and alarms.

Used for the forwarder on the default bus and for every consumer rule on the project bus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.alarms import describe, queue_depth_alarm, rule_failure_alarms
from infra.constructs.secure_queue import secure_queue

REDRIVE_RUNBOOK = "4-redriving-to-the-failed-consumer-only"


@dataclass(frozen=True)
class RetrySettings:
    """EventBridge -> target retry policy (RetryPolicy of the rule target)."""

    max_retry_attempts: int
    max_event_age: Duration


class GuardedRule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pattern: Mapping[str, Any],
        description: str,
        alarm_topic: sns.ITopic,
        retain: bool,
        event_bus: events.IEventBus | None = None,
        rule_name: str | None = None,
        dlq_runbook: str = REDRIVE_RUNBOOK,
    ) -> None:
        """`event_bus=None` puts the rule on the account's default bus. `retain` keeps the DLQ (and the
        dead letters in it) when the stack is deleted or the queue replaced. `dlq_runbook` is the
        docs/operations.md section the DLQ alarm points to."""
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            event_bus=event_bus,
            rule_name=rule_name,
            description=description,
            # Placeholder so the L2 accepts the rule; the full pattern is set on the L1 below because
            # the L2 EventPattern cannot express top-level fields such as `replay-name`.
            event_pattern=events.EventPattern(source=["aws.s3"]),
        )
        cfn_rule = self.rule.node.default_child
        assert isinstance(cfn_rule, events.CfnRule)
        cfn_rule.add_property_override("EventPattern", dict(pattern))

        self.dead_letter_queue = secure_queue(
            self,
            "DeadLetterQueue",
            purpose=f"the dead-letter queue of the rule '{description}'",
            retain=retain,
        )
        queue_depth_alarm(
            self,
            "DeadLetterQueueAlarm",
            queue=self.dead_letter_queue,
            topic=alarm_topic,
            description=describe(
                description,
                "events EventBridge could not deliver (after its retries) are waiting in the rule's DLQ "
                "with ERROR_CODE / ERROR_MESSAGE. Peek, fix the cause, then redrive.",
                dlq_runbook,
            ),
        )
        dimensions = {"RuleName": self.rule.rule_name}
        if event_bus is not None:
            dimensions = {"EventBusName": event_bus.event_bus_name, **dimensions}
        rule_failure_alarms(self, dimensions=dimensions, topic=alarm_topic, subject=description)
