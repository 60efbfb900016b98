"""Turns one registry entry (`contract.consumers.Consumer`) into everything a reliable consumer needs.

For every consumer, whatever its target kind: a rule on the project bus with the entry's pattern
scoped to the ingest bucket, an encrypted TLS-only DLQ, an explicit retry policy, alarms, outputs.
Each target kind builds (or references) its resource here; a Lambda target is its own construct
(`consumer_function.py`: async invoke config, on-failure queue, log group, least-privilege role).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from eventpipe.contract import outputs
from eventpipe.contract.consumers import (
    Consumer,
    EventBusTarget,
    LambdaTarget,
    QueueTarget,
    RetryOverride,
    StateMachineTarget,
    TopicTarget,
)
from infra.config import StageConfig
from infra.constructs.alarms import describe, queue_depth_alarm
from infra.constructs.consumer_function import ConsumerFunction
from infra.constructs.encrypted_topics import EncryptedTopics
from infra.constructs.functions_package import FunctionsPackage
from infra.constructs.guarded_rule import GuardedRule, RetrySettings
from infra.constructs.log_groups import log_group
from infra.constructs.project_function import DataResources
from infra.constructs.records_table import RecordsTable
from infra.constructs.secure_queue import secure_queue
from infra.nag import acknowledge

# A queue target is read by its own consumer; alarm when it stops keeping up, not on every message.
QUEUE_TARGET_BACKLOG_ALARM = 10_000


@dataclass(frozen=True, kw_only=True)
class SharedResources:
    """What consumers may use; built once by the stack."""

    config: StageConfig
    bus: events.IEventBus
    ingest_bucket: s3.IBucket
    rejects_bucket: s3.IBucket
    records: RecordsTable
    functions: FunctionsPackage | None
    topics: EncryptedTopics
    alarm_topic: sns.ITopic
    fanout_queue: sqs.IQueue | None = None  # the range work queue, when a consumer starts fan-outs

    @property
    def data(self) -> DataResources:
        return DataResources(self.ingest_bucket, self.rejects_bucket, self.records)


class ConsumerConstruct(Construct):
    """`outputs` maps the contract's output keys (`<Pascal>RuleArn`...) to values."""

    def __init__(
        self, scope: Construct, construct_id: str, *, consumer: Consumer, shared: SharedResources
    ) -> None:
        super().__init__(scope, construct_id)
        self._consumer = consumer
        self._shared = shared
        self.guarded = GuardedRule(
            self,
            "Delivery",
            pattern=consumer.full_pattern(shared.ingest_bucket.bucket_name),
            description=f"consumer {consumer.name}",
            alarm_topic=shared.alarm_topic,
            retain=shared.config.retain_data,
            event_bus=shared.bus,
        )
        self.rule = self.guarded.rule
        self.dead_letter_queue = self.guarded.dead_letter_queue
        self.function: lambda_.Function | None = None
        self.failure_queue: sqs.Queue | None = None
        self.queue: sqs.Queue | None = None
        self.target_arn = self._build_target()

        pascal = consumer.pascal_name
        self.outputs: dict[str, str] = {
            pascal + outputs.RULE_ARN: self.rule.rule_arn,
            pascal + outputs.RULE_NAME: self.rule.rule_name,
            pascal + outputs.DLQ_URL: self.dead_letter_queue.queue_url,
            pascal + outputs.TARGET_ARN: self.target_arn,
        }
        if self.function is not None and self.failure_queue is not None:
            self.outputs[pascal + outputs.FUNCTION_NAME] = self.function.function_name
            self.outputs[pascal + outputs.FAILURE_QUEUE_URL] = self.failure_queue.queue_url
        if self.queue is not None:
            self.outputs[pascal + outputs.QUEUE_URL] = self.queue.queue_url

    # --- targets ----------------------------------------------------------------------------------

    def _retry(self) -> RetrySettings:
        config = self._shared.config
        override = self._consumer.retry or RetryOverride()
        attempts = override.max_retry_attempts
        age = override.max_event_age_seconds
        return RetrySettings(
            max_retry_attempts=config.target_retry_attempts if attempts is None else attempts,
            max_event_age=Duration.seconds(config.target_max_event_age_seconds if age is None else age),
        )

    def _build_target(self) -> str:
        target = self._consumer.target
        retry = self._retry()
        dlq = self.dead_letter_queue
        common: dict[str, Any] = {
            "dead_letter_queue": dlq,
            "retry_attempts": retry.max_retry_attempts,
            "max_event_age": retry.max_event_age,
        }
        if isinstance(target, LambdaTarget):
            function = self._build_function(target)
            self.rule.add_target(targets.LambdaFunction(function.function, **common))
            return function.function.function_arn
        if isinstance(target, QueueTarget):
            queue = self._build_queue(target)
            self.rule.add_target(targets.SqsQueue(queue, **common))
            return queue.queue_arn
        if isinstance(target, TopicTarget):
            topic = self._build_topic()
            self.rule.add_target(
                targets.SnsTopic(sns.Topic.from_topic_arn(self, "TopicTarget", topic.topic_arn), **common)
            )
            return topic.topic_arn
        if isinstance(target, StateMachineTarget):
            machine = self._build_state_machine(target)
            self.rule.add_target(targets.SfnStateMachine(machine, **common))
            return machine.state_machine_arn
        if isinstance(target, EventBusTarget):
            bus = (
                events.EventBus.from_event_bus_arn(self, "TargetBus", target.bus_arn)
                if target.bus_arn
                else events.EventBus(self, "TargetBus", description=f"eventpipe {self._consumer.name}")
            )
            # EventBridge rejects a RetryPolicy on event-bus targets; the DLQ still applies.
            self.rule.add_target(targets.EventBus(bus, dead_letter_queue=dlq))
            return bus.event_bus_arn
        raise TypeError(f"consumer {self._consumer.name!r}: unsupported target {target!r}")

    def _build_function(self, target: LambdaTarget) -> ConsumerFunction:
        shared = self._shared
        if shared.functions is None:
            raise ValueError(
                f"consumer {self._consumer.name!r} is a Lambda but no functions package was given"
            )
        function = ConsumerFunction(
            self,
            "Lambda",
            consumer=self._consumer,
            target=target,
            config=shared.config,
            package=shared.functions,
            data=shared.data,
            alarm_topic=shared.alarm_topic,
            fanout_queue=shared.fanout_queue,
        )
        self.function, self.failure_queue = function.function, function.failure_queue
        return function

    def _build_queue(self, target: QueueTarget) -> sqs.Queue:
        queue = secure_queue(
            self,
            "Queue",
            retention=Duration.days(target.retention_days),
            purpose=f"the target of consumer {self._consumer.name}",
            no_dlq_reason=(
                "undeliverable events already go to the rule's DLQ, and readers inspect raw events "
                "without deleting them, so a redrive after N receives would hide events"
            ),
        )
        queue_depth_alarm(
            self,
            "QueueBacklogAlarm",
            queue=queue,
            topic=self._shared.alarm_topic,
            threshold=QUEUE_TARGET_BACKLOG_ALARM,
            description=describe(
                f"consumer {self._consumer.name}",
                f"its target queue holds {QUEUE_TARGET_BACKLOG_ALARM} or more messages: whatever reads it "
                "is not keeping up (nothing is lost before the queue's retention).",
                "2-what-each-alarm-means",
            ),
        )
        self.queue = queue
        return queue

    def _build_topic(self) -> sns.Topic:
        """The topic, publishable by this rule only. The target gets the topic by reference: given the
        construct, the L2 would also add a key-policy grant with a wildcard action (`kms:GenerateDataKey*`);
        the shared key grants EventBridge the two actions it needs (`eventbridge_publishes`)."""
        topic = self._shared.topics.topic(
            self, "Topic", display_name=f"eventpipe {self._consumer.name}", eventbridge_publishes=True
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PublishFromConsumerRule",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.rule.rule_arn}},
            )
        )
        return topic

    def _build_state_machine(self, target: StateMachineTarget) -> sfn.StateMachine:
        config = self._shared.config
        logs = log_group(
            self, "StateMachineLogs", retention_days=config.log_retention_days, retain=config.retain_data
        )
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_string(json.dumps(target.definition)),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=logs, level=sfn.LogLevel.ALL),
        )
        acknowledge(
            machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "CDK-generated: CloudWatch Logs delivery and X-Ray tracing actions support no resource-level "
            "permissions (their actions are listed explicitly, no wildcard action).",
        )
        return machine
