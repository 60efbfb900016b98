"""Every alarm can fire: it names a metric AWS publishes, with the dimensions AWS publishes it with,
a single failure breaches it, and its description tells the operator which runbook section to follow.

The documented names below are copied from AWS's own pages (checked 2026-11 with the docs search),
NOT from `infra/constructs/alarms.py`, so a misspelt name in the construct's table fails here:
- AWS/Events: EventBridge user guide, "Monitoring Amazon EventBridge",
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html
  ("Metrics that specify only the RuleName dimension refer to the default event bus. Metrics that
  specify both the EventBusName and RuleName dimensions refer to a custom event bus.")
- AWS/Lambda: Lambda developer guide, "Types of metrics for Lambda functions",
  https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
- AWS/SQS: SQS developer guide, "Available CloudWatch metrics for Amazon SQS",
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from infra_template import Synthesized, notifies_topic, queue_depth_alarms
from stack_fixtures import CDK_CONTEXT, REPO_ROOT, synth

DOCUMENTED_METRICS: dict[str, frozenset[str]] = {
    "AWS/Events": frozenset(
        {
            "DeadLetterInvocations",
            "Events",
            "FailedInvocations",
            "Invocations",
            "InvocationAttempts",
            "InvocationsCreated",
            "InvocationsFailedToBeSentToDlq",
            "InvocationsSentToDlq",
            "MatchedEvents",
            "ThrottledRules",
            "TriggeredRules",
        }
    ),
    "AWS/Lambda": frozenset(
        {
            "Invocations",
            "Errors",
            "DeadLetterErrors",
            "DestinationDeliveryFailures",
            "Throttles",
            "AsyncEventsReceived",
            "AsyncEventAge",
            "AsyncEventsDropped",
        }
    ),
    "AWS/SQS": frozenset(
        {
            "ApproximateAgeOfOldestMessage",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesVisible",
            "NumberOfEmptyReceives",
            "NumberOfMessagesDeleted",
            "NumberOfMessagesReceived",
            "NumberOfMessagesSent",
            "SentMessageSize",
        }
    ),
}
DOCUMENTED_DIMENSIONS: dict[str, tuple[frozenset[str], ...]] = {
    "AWS/Events": (frozenset({"RuleName"}), frozenset({"EventBusName", "RuleName"})),
    "AWS/Lambda": (frozenset({"FunctionName"}),),
    "AWS/SQS": (frozenset({"QueueName"}),),
}
# Where the documented spelling differs from a plausible guess, the guess must be refused.
NOT_PUBLISHED = ("InvocationsFailedToBeSentToDLQ", "InvocationsSentToDLQ")
LAMBDA_FAILURE_METRICS = {"Errors", "Throttles", "AsyncEventsDropped", "DestinationDeliveryFailures"}
RUNBOOK = REPO_ROOT / "docs" / "operations.md"


@pytest.fixture(params=["dev", "kinds"])
def stack(request: pytest.FixtureRequest) -> Synthesized:
    return request.getfixturevalue(request.param)


def alarms(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in synth.of_type("AWS::CloudWatch::Alarm").items()}


def undocumented_metrics(template_alarms: dict[str, dict[str, Any]]) -> list[str]:
    """One line per alarm whose namespace, metric name or dimension set AWS does not document."""
    problems = []
    for logical_id, alarm in template_alarms.items():
        namespace, name = alarm.get("Namespace"), alarm.get("MetricName")
        if name not in DOCUMENTED_METRICS.get(namespace, ()):
            problems.append(f"{logical_id}: {namespace} {name} is not a documented metric")
            continue
        dimensions = frozenset(d["Name"] for d in alarm.get("Dimensions", []))
        if dimensions not in DOCUMENTED_DIMENSIONS[namespace]:
            problems.append(f"{logical_id}: {namespace} {name} is not published with {sorted(dimensions)}")
    return problems


def runbook_anchors(path: Path = RUNBOOK) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces -> '-'."""
    anchors = set()
    for line in path.read_text().splitlines():
        heading = re.match(r"^#{1,6} (.+)$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_alarm_names_a_metric_and_dimensions_aws_publishes(stack: Synthesized) -> None:
    found = alarms(stack)

    assert found, "the stack has alarms"
    assert undocumented_metrics(found) == []


@pytest.mark.parametrize("wrong_name", NOT_PUBLISHED)
def test_the_check_refuses_a_metric_name_aws_does_not_publish(dev: Synthesized, wrong_name: str) -> None:
    logical_id, alarm = next(
        (k, a) for k, a in alarms(dev).items() if a["MetricName"] == "InvocationsFailedToBeSentToDlq"
    )

    problems = undocumented_metrics({logical_id: {**alarm, "MetricName": wrong_name}})

    assert problems == [f"{logical_id}: AWS/Events {wrong_name} is not a documented metric"]


def test_the_check_refuses_default_bus_dimensions_for_a_lambda_metric(dev: Synthesized) -> None:
    logical_id, alarm = next((k, a) for k, a in alarms(dev).items() if a["Namespace"] == "AWS/Lambda")
    wrong = {**alarm, "Dimensions": [{"Name": "RuleName", "Value": "x"}]}

    assert undocumented_metrics({logical_id: wrong}) != []


def test_the_alarm_table_itself_holds_only_documented_names() -> None:
    from infra.constructs.alarms import ALARMED_METRICS

    for metric in ALARMED_METRICS:
        assert metric.metric_name in DOCUMENTED_METRICS[metric.namespace], metric
        assert set(metric.dimensions) <= set(DOCUMENTED_DIMENSIONS[metric.namespace]), metric


def test_a_single_failure_fires_every_alarm_and_missing_data_does_not(stack: Synthesized) -> None:
    # Failure metrics are only published when something failed: "no data" means "nothing failed",
    # and one datapoint of 1 in one 5-minute period must be enough.
    for logical_id, alarm in alarms(stack).items():
        assert alarm["TreatMissingData"] == "notBreaching", logical_id
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", logical_id
        assert alarm["EvaluationPeriods"] == 1, logical_id
        assert alarm["Period"] == 300, logical_id
        expected = "Maximum" if alarm["Namespace"] == "AWS/SQS" else "Sum"
        assert alarm["Statistic"] == expected, logical_id


def test_every_alarm_notifies_the_alarm_topic_when_it_fires_and_recovers(stack: Synthesized) -> None:
    topic_id = stack.output_ref("AlarmTopicArn")

    for logical_id, alarm in alarms(stack).items():
        assert notifies_topic(alarm, topic_id), logical_id


def test_every_alarm_description_names_an_existing_runbook_section(stack: Synthesized) -> None:
    anchors = runbook_anchors()

    for logical_id, alarm in alarms(stack).items():
        description = alarm["AlarmDescription"]
        match = re.search(r"Runbook: docs/operations\.md#([\w-]+)$", description)
        assert match, f"{logical_id}: {description!r} names no runbook section"
        assert match.group(1) in anchors, f"{logical_id}: no section #{match.group(1)} in docs/operations.md"
        what_broke = description[: match.start()]
        assert len(what_broke) >= 40, f"{logical_id}: {description!r} does not say what broke"


def test_every_lambda_consumer_alarms_on_errors_throttles_drops_and_lost_failures(stack: Synthesized) -> None:
    functions = [
        stack.output_ref(k)
        for k in stack.outputs
        if k.endswith("FunctionName") and k != "RangeWorkerFunctionName"
    ]
    topic_id = stack.output_ref("AlarmTopicArn")

    assert functions
    for function_id in functions:
        on_function = {
            a["MetricName"]: a
            for a in alarms(stack).values()
            if a["Namespace"] == "AWS/Lambda"
            and a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
        }
        assert set(on_function) == LAMBDA_FAILURE_METRICS, function_id
        for alarm in on_function.values():
            assert alarm["Threshold"] == 1
            assert notifies_topic(alarm, topic_id)


def test_the_range_worker_alarms_on_errors_throttles_and_dead_tasks(stack: Synthesized) -> None:
    # Invoked synchronously by its SQS event source: the asynchronous-invocation metrics are never
    # published for it, so its failure path is the work queue's DLQ, watched by a depth alarm.
    function_id = stack.output_ref("RangeWorkerFunctionName")
    dlq_id = stack.output_ref("RangeWorkerDlqUrl")
    topic_id = stack.output_ref("AlarmTopicArn")
    on_function = {
        a["MetricName"]: a
        for a in alarms(stack).values()
        if a["Namespace"] == "AWS/Lambda"
        and a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    }
    (dead_tasks,) = queue_depth_alarms(stack, dlq_id)

    assert set(on_function) == {"Errors", "Throttles"}
    for alarm in [*on_function.values(), dead_tasks]:
        assert alarm["Threshold"] == 1
        assert notifies_topic(alarm, topic_id)
        assert alarm["AlarmDescription"].endswith("Runbook: docs/operations.md#8-fan-out-the-range-worker")


# --- reusing an existing alarm topic ------------------------------------------------------------

EXISTING_TOPIC = "arn:aws:sns:eu-west-1:111122223333:team-oncall"


@pytest.fixture(scope="module")
def reusing(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    context = {**CDK_CONTEXT, "eventpipe.dev.alarm_topic_arn": EXISTING_TOPIC}
    return synth(context, tmp_path_factory.mktemp("cdk-reusing"))


def test_an_existing_alarm_topic_receives_every_alarm_and_no_topic_or_key_is_created(
    reusing: Synthesized,
) -> None:
    found = alarms(reusing)

    assert found
    for logical_id, alarm in found.items():
        assert alarm["AlarmActions"] == [EXISTING_TOPIC], logical_id
        assert alarm["OKActions"] == [EXISTING_TOPIC], logical_id
    assert reusing.outputs["AlarmTopicArn"] == EXISTING_TOPIC
    # The shipped consumers have no SNS target: no topic, so no key to pay for either.
    assert reusing.of_type("AWS::SNS::Topic") == {}
    assert reusing.of_type("AWS::KMS::Key") == {}
