"""What is deployed and how healthy it is: consumer rows, queue depths, alarms, archive, last replay."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from eventpipe.contract import outputs
from eventpipe.ops import replay
from eventpipe.ops.context import ConsumerResources, OpsContext
from eventpipe.ops.deadletters import QueueDepth, oldest_age_from_metrics, oldest_age_from_peek, queue_depth


def target_label(consumer: ConsumerResources, registry_target: Any = None) -> str:
    """`lambda:eventpipe-dev-ingest`, `sqs:eventpipe-dev-audit`...; the registry kind when not deployed."""
    if consumer.target_arn and consumer.kind:
        resource = consumer.target_arn.split(":", 5)[-1]
        return f"{consumer.kind.value}:{resource.rsplit('/', 1)[-1].removeprefix('function:')}"
    kind = getattr(registry_target, "kind", None)
    return f"{kind} (not deployed)" if kind else "(not deployed)"


def rule_details(ctx: OpsContext, consumer: ConsumerResources) -> tuple[str, dict[str, Any] | None]:
    """(state, deployed pattern) of the consumer's rule; `missing` when the rule is gone."""
    if not consumer.rule_name:
        return "not deployed", None
    bus = ctx.outputs.get(outputs.EVENT_BUS_NAME)
    try:
        rule = ctx.client("events").describe_rule(
            Name=consumer.rule_name, **({"EventBusName": bus} if bus and consumer.name != "forwarder" else {})
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return "missing", None
        raise
    pattern = json.loads(rule["EventPattern"]) if rule.get("EventPattern") else None
    return str(rule.get("State", "?")), pattern


def depth_or_none(ctx: OpsContext, url: str | None) -> QueueDepth | None:
    return queue_depth(ctx.client("sqs"), url) if url else None


@dataclass(frozen=True)
class ConsumerRow:
    name: str
    pattern: dict[str, Any] | None
    target: str
    rule_state: str
    dlq: QueueDepth | None
    failures: QueueDepth | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pattern": self.pattern,
            "target": self.target,
            "ruleState": self.rule_state,
            "dlqDepth": self.dlq.total if self.dlq else None,
            "failureQueueDepth": self.failures.total if self.failures else None,
        }


def consumer_rows(ctx: OpsContext) -> list[ConsumerRow]:
    registry_targets = {entry.name: getattr(entry, "target", None) for entry in ctx.registry}
    rows = []
    for consumer in ctx.consumers():
        state, deployed_pattern = rule_details(ctx, consumer)
        rows.append(
            ConsumerRow(
                name=consumer.name,
                # The deployed pattern is the truth; the registry's is shown for undeployed entries.
                pattern=deployed_pattern
                or (dict(consumer.pattern) if consumer.pattern is not None else None),
                target=target_label(consumer, registry_targets.get(consumer.name)),
                rule_state=state,
                dlq=depth_or_none(ctx, consumer.dlq_url),
                failures=depth_or_none(ctx, consumer.failure_queue_url),
            )
        )
    return rows


@dataclass(frozen=True)
class QueueRow:
    consumer: str
    role: str
    url: str
    depth: QueueDepth
    oldest_age_seconds: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "queue": self.role,
            "url": self.url,
            "depth": self.depth.visible,
            "inFlight": self.depth.in_flight,
            "oldestAgeSeconds": self.oldest_age_seconds,
        }


def dead_letter_queues(ctx: OpsContext, *, with_age: bool = True) -> list[QueueRow]:
    """Every rule DLQ and failure queue (consumers, then the forwarder) and the range work DLQ, with
    depth and oldest age.

    Oldest age: on AWS the CloudWatch metric ApproximateAgeOfOldestMessage (SQS has no such queue
    attribute); when it has no datapoint yet, and always in local mode, the age of the oldest peeked
    message's SentTimestamp.
    """
    sqs = ctx.client("sqs")
    rows = []
    for consumer in ctx.dead_letter_owners():
        for role, url in consumer.queues.items():
            depth = queue_depth(sqs, url)
            age = None
            if with_age and depth.total:
                if not ctx.local:
                    age = oldest_age_from_metrics(ctx.client("cloudwatch"), url)
                if age is None and depth.visible:
                    age = oldest_age_from_peek(sqs, url)
            rows.append(QueueRow(consumer.name, role, url, depth, age))
    return rows


def stack_alarms(ctx: OpsContext) -> list[dict[str, Any]]:
    """Every alarm of the stack, in any state (CloudFormation names them `<stack>-<logical id>-...`)."""
    cloudwatch = ctx.client("cloudwatch")
    alarms: list[dict[str, Any]] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=ctx.stack, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    ):
        alarms.extend(page.get("MetricAlarms", []))
        alarms.extend(page.get("CompositeAlarms", []))
    return alarms


def health(ctx: OpsContext) -> dict[str, Any]:
    """Everything `eventpipe status` shows, as plain data."""
    archive = replay.describe_archive(ctx)
    replays = replay.list_replays(ctx)
    queues = dead_letter_queues(ctx, with_age=False)
    audit_url = ctx.outputs.get(outputs.consumer_output("audit", outputs.QUEUE_URL))
    alarms = stack_alarms(ctx)
    return {
        "stack": ctx.stack,
        "region": ctx.region,
        "local": ctx.local,
        "checkedAt": datetime.now(UTC).isoformat(),
        "queues": [row.as_json() for row in queues],
        "deadLetters": sum(row.depth.total for row in queues),
        "auditQueueDepth": queue_depth(ctx.client("sqs"), audit_url).total if audit_url else None,
        # A stack without any alarm is worth saying: local mode has none (moto's CloudFormation
        # does not create AWS::CloudWatch::Alarm), so there only the queue depths tell.
        "alarmsDefined": len(alarms),
        "alarms": [
            {
                "name": alarm["AlarmName"],
                "reason": alarm.get("StateReason", ""),
                "since": _iso(alarm.get("StateUpdatedTimestamp")),
            }
            for alarm in alarms
            if alarm.get("StateValue") == "ALARM"
        ],
        "archive": {
            "name": archive.get("ArchiveName"),
            "state": archive.get("State"),
            "retentionDays": archive.get("RetentionDays"),
            "sizeBytes": archive.get("SizeBytes"),
            "eventCount": archive.get("EventCount"),
        },
        "lastReplay": replay_json(replays[0]) if replays else None,
    }


def replay_json(item: dict[str, Any]) -> dict[str, Any]:
    """A ListReplays / DescribeReplay item with times as ISO strings and the progress fraction."""
    keys = (
        "ReplayName",
        "State",
        "StateReason",
        "EventStartTime",
        "EventEndTime",
        "EventLastReplayedTime",
        "ReplayStartTime",
        "ReplayEndTime",
    )
    result = {key[0].lower() + key[1:]: _iso(item.get(key)) for key in keys if key in item}
    destination = item.get("Destination")
    if isinstance(destination, dict):
        result["filterArns"] = destination.get("FilterArns", [])
    result["progress"] = round(replay.progress_fraction(item), 3)
    return result


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
