"""Every alarm of the stack comes from `ALARMED_METRICS`: one table of metric names and dimensions.

CloudWatch matches metric names and dimensions exactly, and an alarm on a name AWS never publishes
stays OK forever (missing data is "not breaching"). So names and dimensions are written once, here,
and `tests/infra/test_stack_alarms.py` checks every alarm of the synthesized template against the
names AWS documents. Sources:
- AWS/Events: EventBridge user guide, "Monitoring Amazon EventBridge"
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html): `RuleName` alone for
  rules on the default bus, `EventBusName` + `RuleName` for a custom bus; FailedInvocations is only
  published when it is not zero.
- AWS/Lambda: Lambda developer guide, "Types of metrics for Lambda functions"
  (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html), dimension FunctionName.
- AWS/SQS: SQS developer guide, "Available CloudWatch metrics for Amazon SQS", dimension QueueName.

Every description says what broke and which section of docs/operations.md to follow (`RUNBOOK`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)
RUNBOOK = "docs/operations.md"
# CloudWatch limits AlarmDescription to 1024 characters.
MAX_DESCRIPTION = 1024


@dataclass(frozen=True, kw_only=True)
class AlarmedMetric:
    """One metric the stack alarms on: where AWS publishes it, and what a datapoint means."""

    key: str  # construct id prefix of its alarms
    namespace: str
    metric_name: str
    dimensions: tuple[frozenset[str], ...]  # the dimension sets AWS publishes it with
    statistic: str
    what_broke: str
    runbook: str  # heading anchor in docs/operations.md

    def metric(self, dimensions: Mapping[str, str]) -> cloudwatch.Metric:
        if frozenset(dimensions) not in self.dimensions:
            raise ValueError(
                f"{self.namespace} {self.metric_name} is not published with dimensions {sorted(dimensions)}"
            )
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=self.metric_name,
            dimensions_map=dict(dimensions),
            statistic=self.statistic,
            period=PERIOD,
        )


DEFAULT_BUS_RULE = frozenset({"RuleName"})
CUSTOM_BUS_RULE = frozenset({"EventBusName", "RuleName"})
FUNCTION = frozenset({"FunctionName"})
QUEUE = frozenset({"QueueName"})

RULE_FAILED_INVOCATIONS = AlarmedMetric(
    key="FailedInvocations",
    namespace="AWS/Events",
    metric_name="FailedInvocations",
    dimensions=(DEFAULT_BUS_RULE, CUSTOM_BUS_RULE),
    statistic=cloudwatch.Stats.SUM,
    what_broke=(
        "EventBridge failed permanently to invoke the rule's target (its DLQ alarm usually fires too)."
    ),
    runbook="3-inspecting-dead-letters",
)
RULE_DLQ_DELIVERY_FAILED = AlarmedMetric(
    key="InvocationsFailedToBeSentToDlq",
    namespace="AWS/Events",
    metric_name="InvocationsFailedToBeSentToDlq",
    dimensions=(DEFAULT_BUS_RULE, CUSTOM_BUS_RULE),
    statistic=cloudwatch.Stats.SUM,
    what_broke=(
        "events could not even be written to the rule's DLQ (queue deleted, or its policy changed): "
        "they are LOST from EventBridge's side. Repair the DLQ, then replay the alarm's time window."
    ),
    runbook="5-replaying-archived-events",
)
FUNCTION_ERRORS = AlarmedMetric(
    key="Errors",
    namespace="AWS/Lambda",
    metric_name="Errors",
    dimensions=(FUNCTION,),
    statistic=cloudwatch.Stats.SUM,
    what_broke=(
        "the function raised (exception, timeout, out of memory). Lambda retries; what still fails "
        "lands in the failure queue. Read the function's logs for the cause."
    ),
    runbook="3-inspecting-dead-letters",
)
FUNCTION_THROTTLES = AlarmedMetric(
    key="Throttles",
    namespace="AWS/Lambda",
    metric_name="Throttles",
    dimensions=(FUNCTION,),
    statistic=cloudwatch.Stats.SUM,
    what_broke=(
        "invocations were throttled (account or reserved concurrency exhausted). Lambda keeps retrying "
        "async events until their maximum age; raise concurrency before events expire."
    ),
    runbook="2-what-each-alarm-means",
)
FUNCTION_ASYNC_EVENTS_DROPPED = AlarmedMetric(
    key="AsyncEventsDropped",
    namespace="AWS/Lambda",
    metric_name="AsyncEventsDropped",
    dimensions=(FUNCTION,),
    statistic=cloudwatch.Stats.SUM,
    what_broke=(
        "Lambda dropped events without running the function to success (retries exhausted or event "
        "too old). Check the failure queue holds them; if it does not, replay the window."
    ),
    runbook="3-inspecting-dead-letters",
)
FUNCTION_DESTINATION_DELIVERY_FAILURES = AlarmedMetric(
    key="DestinationDeliveryFailures",
    namespace="AWS/Lambda",
    metric_name="DestinationDeliveryFailures",
    dimensions=(FUNCTION,),
    statistic=cloudwatch.Stats.SUM,
    what_broke=(
        "failed events could not be written to the function's failure queue: they are LOST. Repair the "
        "queue or the function role (redeploy), then replay the alarm's time window to this consumer."
    ),
    runbook="5-replaying-archived-events",
)
QUEUE_MESSAGES_VISIBLE = AlarmedMetric(
    key="ApproximateNumberOfMessagesVisible",
    namespace="AWS/SQS",
    metric_name="ApproximateNumberOfMessagesVisible",
    dimensions=(QUEUE,),
    statistic=cloudwatch.Stats.MAXIMUM,
    what_broke="messages are waiting in the queue.",
    runbook="3-inspecting-dead-letters",
)

ALARMED_METRICS: tuple[AlarmedMetric, ...] = (
    RULE_FAILED_INVOCATIONS,
    RULE_DLQ_DELIVERY_FAILED,
    FUNCTION_ERRORS,
    FUNCTION_THROTTLES,
    FUNCTION_ASYNC_EVENTS_DROPPED,
    FUNCTION_DESTINATION_DELIVERY_FAILURES,
    QUEUE_MESSAGES_VISIBLE,
)
"""The one table every alarm's metric comes from."""

RULE_FAILURE_METRICS: tuple[AlarmedMetric, ...] = (RULE_FAILED_INVOCATIONS, RULE_DLQ_DELIVERY_FAILED)
FUNCTION_FAILURE_METRICS: tuple[AlarmedMetric, ...] = (
    FUNCTION_ERRORS,
    FUNCTION_THROTTLES,
    FUNCTION_ASYNC_EVENTS_DROPPED,
    FUNCTION_DESTINATION_DELIVERY_FAILURES,
)
"""A function EventBridge invokes asynchronously."""
POLLED_FUNCTION_FAILURE_METRICS: tuple[AlarmedMetric, ...] = (FUNCTION_ERRORS, FUNCTION_THROTTLES)
"""A function an SQS event source mapping invokes (synchronously): AsyncEventsDropped and
DestinationDeliveryFailures are only published for asynchronous invocations, so alarms on them could
never fire; the queue's redrive policy and its DLQ depth alarm take their place."""


def describe(subject: str, what_broke: str, runbook: str) -> str:
    """`<subject>: <what broke> Runbook: docs/operations.md#<section>` (what an operator acts on)."""
    description = f"{subject}: {what_broke} Runbook: {RUNBOOK}#{runbook}"
    if len(description) > MAX_DESCRIPTION:
        raise ValueError(f"alarm description longer than {MAX_DESCRIPTION} characters: {description!r}")
    return description


def metric_alarm(
    scope: Construct,
    construct_id: str,
    *,
    metric: AlarmedMetric,
    dimensions: Mapping[str, str],
    topic: sns.ITopic,
    description: str,
    threshold: int = 1,
) -> cloudwatch.Alarm:
    """`metric >= threshold` in one 5-minute period notifies `topic` (and again when it recovers).

    Missing data is not breaching: the failure metrics are only published when something failed
    (EventBridge publishes FailedInvocations only when non-zero), so "no data" means "nothing failed";
    a datapoint of 1 is enough to fire.
    """
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=metric.metric(dimensions),
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    action = cw_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    alarm.add_ok_action(action)
    return alarm


def queue_depth_alarm(
    scope: Construct,
    construct_id: str,
    *,
    queue: sqs.IQueue,
    topic: sns.ITopic,
    description: str,
    threshold: int = 1,
) -> cloudwatch.Alarm:
    """ApproximateNumberOfMessagesVisible >= threshold (1 for dead-letter queues: any message matters).
    `description` is the whole, actionable text (see `describe`)."""
    return metric_alarm(
        scope,
        construct_id,
        metric=QUEUE_MESSAGES_VISIBLE,
        dimensions={"QueueName": queue.queue_name},
        topic=topic,
        description=description,
        threshold=threshold,
    )


def rule_failure_alarms(
    scope: Construct,
    *,
    dimensions: Mapping[str, str],
    topic: sns.ITopic,
    subject: str,
) -> list[cloudwatch.Alarm]:
    """One alarm per rule failure metric. `dimensions` must match what EventBridge publishes:
    `RuleName` alone for the default bus, `EventBusName` + `RuleName` for a custom bus."""
    return [
        metric_alarm(
            scope,
            f"{metric.key}Alarm",
            metric=metric,
            dimensions=dimensions,
            topic=topic,
            description=describe(subject, metric.what_broke, metric.runbook),
        )
        for metric in RULE_FAILURE_METRICS
    ]


def function_failure_alarms(
    scope: Construct,
    *,
    function: lambda_.IFunction,
    topic: sns.ITopic,
    subject: str,
    metrics: tuple[AlarmedMetric, ...] = FUNCTION_FAILURE_METRICS,
    explanations: Mapping[str, tuple[str, str]] | None = None,
) -> list[cloudwatch.Alarm]:
    """One alarm per metric of `metrics` (default: an asynchronously invoked function's Errors,
    Throttles, AsyncEventsDropped and DestinationDeliveryFailures). `explanations` replaces a metric's
    (what broke, runbook section) by its key, for a function whose failures take another path."""
    alarms = []
    for metric in metrics:
        what_broke, runbook = (explanations or {}).get(metric.key, (metric.what_broke, metric.runbook))
        alarms.append(
            metric_alarm(
                scope,
                f"{metric.key}Alarm",
                metric=metric,
                dimensions={"FunctionName": function.function_name},
                topic=topic,
                description=describe(subject, what_broke, runbook),
            )
        )
    return alarms
