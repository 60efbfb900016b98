"""The project bus, its archive, and the default-bus rule that forwards this bucket's S3 events to it.

S3 only publishes to the default bus; a bus of our own keeps consumer rules, archive and replays
scoped to this stack.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from eventpipe.contract.consumers import scoped_pattern
from infra.constructs.guarded_rule import GuardedRule

FORWARDER_RUNBOOK = "forwarder-dlq"


class EventRouting(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str,
        archive_retention_days: int,
        alarm_topic: sns.ITopic,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", description="eventpipe: S3 events of the ingest bucket")
        # L1 without an event pattern: the archive keeps every event of the bus (what replays need).
        self.archive = events.CfnArchive(
            self,
            "Archive",
            source_arn=self.bus.event_bus_arn,
            retention_days=archive_retention_days,
            description="Every event of the eventpipe bus, for replays",
        )
        # Named, so the role below can name the rule's ARN in its trust policy: with the generated
        # name, the role (trust policy -> rule ARN) and the rule (target -> role ARN) would form a cycle.
        rule_name = f"{Stack.of(self).stack_name}-forwarder"
        self.forwarder = GuardedRule(
            self,
            "Forwarder",
            pattern=scoped_pattern({}, bucket_name),
            description="forwarder: S3 events of the ingest bucket, default bus -> project bus",
            alarm_topic=alarm_topic,
            retain=retain,
            rule_name=rule_name,
            dlq_runbook=FORWARDER_RUNBOOK,
        )
        rule_arn = Stack.of(self).format_arn(
            service="events",
            resource="rule",
            resource_name=rule_name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        # Confused-deputy protection: EventBridge may assume this role only for this rule of this
        # account. "For EventBridge event bus rule targets, the value of aws:SourceArn must be the rule
        # ARN" (EventBridge user guide, "Cross-service confused deputy prevention in Amazon EventBridge",
        # https://docs.aws.amazon.com/eventbridge/latest/userguide/cross-service-confused-deputy-prevention.html).
        self.forwarder_role = iam.Role(
            self,
            "ForwarderRole",
            description="EventBridge forwards the bucket's S3 events from the default bus to the project bus",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnEquals": {"aws:SourceArn": rule_arn},
                },
            ),
        )
        # No RetryPolicy here: EventBridge does not accept one for event-bus targets (it retries
        # bus-to-bus delivery itself); undeliverable events still land in the DLQ.
        self.forwarder.rule.add_target(
            targets.EventBus(
                self.bus, dead_letter_queue=self.forwarder.dead_letter_queue, role=self.forwarder_role
            )
        )
