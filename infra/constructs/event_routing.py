"""The project bus, its archive, and the default-bus rule that forwards this bucket's S3 events to it.

S3 only publishes to the default bus; a bus of our own keeps consumer rules, archive and replays
scoped to this stack.
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.guarded_rule import GuardedRule
from infra.consumers import scoped_pattern


class EventRouting(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str,
        archive_retention_days: int,
        alarm_topic: sns.ITopic,
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
        self.forwarder = GuardedRule(
            self,
            "Forwarder",
            pattern=scoped_pattern({}, bucket_name),
            description="forwarder: S3 events of the ingest bucket, default bus -> project bus",
            alarm_topic=alarm_topic,
        )
        # No RetryPolicy here: EventBridge does not accept one for event-bus targets (it retries
        # bus-to-bus delivery itself); undeliverable events still land in the DLQ.
        self.forwarder.rule.add_target(
            targets.EventBus(self.bus, dead_letter_queue=self.forwarder.dead_letter_queue)
        )
