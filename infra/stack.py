"""The eventpipe stack: composes the constructs, owns tags and the stack outputs (the contract)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from eventpipe.contract import outputs as output_names
from eventpipe.contract.consumers import Consumer, LambdaTarget, validate_registry
from infra.config import ConfigError, StageConfig
from infra.constructs.access_logs import AccessLogsBucket
from infra.constructs.alarm_topic import AlarmTopic
from infra.constructs.consumer import ConsumerConstruct, SharedResources
from infra.constructs.encrypted_topics import EncryptedTopics
from infra.constructs.event_routing import EventRouting
from infra.constructs.functions_package import FunctionsPackage
from infra.constructs.ingest_bucket import IngestBucket
from infra.constructs.project_function import DataResources
from infra.constructs.range_worker import RangeWorker
from infra.constructs.records_table import RecordsTable
from infra.constructs.rejects_bucket import RejectsBucket
from infra.registry import CONSUMERS


class EventpipeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        consumers: Sequence[Consumer] = CONSUMERS,
        **kwargs: Any,
    ) -> None:
        try:
            validate_registry(consumers)
        except ValueError as invalid:
            raise ConfigError(str(invalid)) from None
        # A stack that retains data is also protected against accidental deletion.
        kwargs.setdefault("termination_protection", config.retain_data)
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "eventpipe")
        Tags.of(self).add("stage", config.stage)

        access_logs = AccessLogsBucket(
            self,
            "AccessLogs",
            retention_days=config.access_log_retention_days,
            retain_data=config.retain_data,
        )
        bucket_settings: dict[str, Any] = {
            "access_logs": access_logs.bucket,
            "noncurrent_version_expiration_days": config.noncurrent_version_expiration_days,
            "retain_data": config.retain_data,
        }
        # One access-log prefix per bucket, so each bucket's log stays separable.
        self.ingest_bucket = IngestBucket(self, "Ingest", log_prefix="ingest/", **bucket_settings).bucket
        self.rejects_bucket = RejectsBucket(self, "Rejects", log_prefix="rejects/", **bucket_settings).bucket
        self.records = RecordsTable(self, "Records", retain_data=config.retain_data)
        topics = EncryptedTopics(self, "Topics", retain=config.retain_data)
        self.alarm_topic = AlarmTopic(
            self,
            "Alarms",
            topics=topics,
            email=config.alarm_email,
            existing_topic_arn=config.alarm_topic_arn,
        ).topic
        self.routing = EventRouting(
            self,
            "Routing",
            bucket_name=self.ingest_bucket.bucket_name,
            archive_retention_days=config.archive_retention_days,
            alarm_topic=self.alarm_topic,
            retain=config.retain_data,
        )
        needs_functions = any(isinstance(c.target, LambdaTarget) for c in consumers)
        functions = FunctionsPackage(self, "Functions") if needs_functions else None
        data = DataResources(self.ingest_bucket, self.rejects_bucket, self.records)
        self.range_worker = self._build_range_worker(config, consumers, functions, data)
        shared = SharedResources(
            config=config,
            bus=self.routing.bus,
            ingest_bucket=self.ingest_bucket,
            rejects_bucket=self.rejects_bucket,
            records=self.records,
            functions=functions,
            topics=topics,
            alarm_topic=self.alarm_topic,
            fanout_queue=self.range_worker.queue if self.range_worker else None,
        )
        self.consumers = {
            c.name: ConsumerConstruct(self, f"Consumer{c.pascal_name}", consumer=c, shared=shared)
            for c in consumers
        }
        self._add_outputs(access_logs.bucket.bucket_name)

    def _build_range_worker(
        self,
        config: StageConfig,
        consumers: Sequence[Consumer],
        functions: FunctionsPackage | None,
        data: DataResources,
    ) -> RangeWorker | None:
        """The range worker, when a consumer starts fan-outs; it runs ingest's write path with the
        stage's `fanout_memory_mb`."""
        starters = [c for c in consumers if isinstance(c.target, LambdaTarget) and c.target.starts_fanout]
        if not starters or functions is None:
            return None
        return RangeWorker(
            self,
            "RangeWorker",
            config=config,
            package=functions,
            data=data,
            alarm_topic=self.alarm_topic,
            memory_mb=config.fanout_memory_mb,
        )

    def _add_outputs(self, access_logs_bucket_name: str) -> None:
        routing = self.routing
        forwarder = output_names.FORWARDER_PREFIX
        outputs = {
            output_names.BUCKET_NAME: self.ingest_bucket.bucket_name,
            output_names.REJECTS_BUCKET_NAME: self.rejects_bucket.bucket_name,
            output_names.ACCESS_LOGS_BUCKET_NAME: access_logs_bucket_name,
            output_names.EVENT_BUS_NAME: routing.bus.event_bus_name,
            output_names.EVENT_BUS_ARN: routing.bus.event_bus_arn,
            output_names.ARCHIVE_NAME: routing.archive.ref,
            output_names.ARCHIVE_ARN: routing.archive.attr_arn,
            output_names.TABLE_NAME: self.records.table.table_name,
            output_names.ALARM_TOPIC_ARN: self.alarm_topic.topic_arn,
            forwarder + output_names.RULE_ARN: routing.forwarder.rule.rule_arn,
            forwarder + output_names.DLQ_URL: routing.forwarder.dead_letter_queue.queue_url,
        }
        for construct in self.consumers.values():
            outputs.update(construct.outputs)
        if self.range_worker is not None:
            outputs.update(self.range_worker.outputs)
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)
