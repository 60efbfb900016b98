"""Alarms shared by every delivery path: a queue that holds messages, a rule that fails to deliver."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)
# Both failure metrics of a rule: the event was dropped, or could not even be dead-lettered.
RULE_FAILURE_METRICS = ("FailedInvocations", "InvocationsFailedToBeSentToDLQ")


def _notify(alarm: cloudwatch.Alarm, topic: sns.ITopic) -> cloudwatch.Alarm:
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
    """ApproximateNumberOfMessagesVisible >= threshold (1 for dead-letter queues: any message matters)."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM
        ),
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    return _notify(alarm, topic)


def rule_failure_alarms(
    scope: Construct,
    *,
    dimensions: Mapping[str, str],
    topic: sns.ITopic,
    subject: str,
) -> list[cloudwatch.Alarm]:
    """One alarm per rule failure metric. `dimensions` must match what EventBridge publishes:
    `RuleName` alone for the default bus, `EventBusName` + `RuleName` for a custom bus."""
    alarms = []
    for metric_name in RULE_FAILURE_METRICS:
        metric = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name=metric_name,
            dimensions_map=dict(dimensions),
            statistic=cloudwatch.Stats.SUM,
            period=PERIOD,
        )
        alarm = cloudwatch.Alarm(
            scope,
            f"{metric_name}Alarm",
            alarm_description=f"{subject}: {metric_name} >= 1",
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarms.append(_notify(alarm, topic))
    return alarms
