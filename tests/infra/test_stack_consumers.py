"""Every registered consumer gets the whole treatment; walks `CONSUMERS`, so later entries are covered.

The same checks run on the test-only stack whose extra consumers cover every target kind.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_template import (
    FOURTEEN_DAYS,
    Synthesized,
    assert_secure_queue,
    notifies_topic,
    queue_depth_alarms,
    referenced_id,
    rule_alarms,
)
from stack_fixtures import CDK_CONTEXT, EXTRA_CONSUMERS, FOREIGN_BUS_ARN, KINDS_CONSUMERS, KINDS_CONTEXT

from eventpipe.contract.consumers import (
    Consumer,
    EventBusTarget,
    LambdaTarget,
    QueueTarget,
    TopicTarget,
)
from infra.config import StageConfig, load_config
from infra.registry import CONSUMERS


def cases(target_type: type | None = None) -> list[Any]:
    """(stack, consumer) pairs: every registered consumer in `dev`, and every consumer of `kinds`."""
    pairs = [("dev", c) for c in CONSUMERS] + [("kinds", c) for c in KINDS_CONSUMERS]
    return [
        pytest.param((stack, c), id=f"{stack}-{c.name}")
        for stack, c in pairs
        if target_type is None or isinstance(c.target, target_type)
    ]


CONFIGS = {
    "dev": load_config(CDK_CONTEXT.get),
    "kinds": load_config(KINDS_CONTEXT.get),
}


@pytest.fixture(params=cases())
def case(request: pytest.FixtureRequest) -> tuple[Synthesized, Consumer, StageConfig]:
    stack, consumer = request.param
    return request.getfixturevalue(stack), consumer, CONFIGS[stack]


def rule_of(synth: Synthesized, consumer: Consumer) -> tuple[str, dict[str, Any]]:
    rule_id = synth.output_ref(f"{consumer.pascal_name}RuleArn")
    return rule_id, synth.props(rule_id)


def test_rule_is_on_the_project_bus_with_the_scoped_pattern(case: Any) -> None:
    synth, consumer, _ = case
    rule_id, rule = rule_of(synth, consumer)

    assert rule["EventBusName"] == {"Ref": synth.output_ref("EventBusName")}
    assert rule["EventPattern"] == consumer.full_pattern({"Ref": synth.output_ref("BucketName")})
    assert rule["State"] == "ENABLED"
    assert synth.output_ref(f"{consumer.pascal_name}RuleName") == rule_id


def test_target_has_an_encrypted_tls_only_dlq_and_explicit_retry_policy(case: Any) -> None:
    synth, consumer, config = case
    _, rule = rule_of(synth, consumer)
    (target,) = rule["Targets"]
    dlq_id = synth.output_ref(f"{consumer.pascal_name}DlqUrl")

    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    assert_secure_queue(synth, dlq_id)
    if isinstance(consumer.target, EventBusTarget):
        assert "RetryPolicy" not in target  # not accepted by EventBridge for bus targets
        return
    retry = consumer.retry
    attempts = retry.max_retry_attempts if retry and retry.max_retry_attempts is not None else None
    age = retry.max_event_age_seconds if retry and retry.max_event_age_seconds is not None else None
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": attempts if attempts is not None else config.target_retry_attempts,
        "MaximumEventAgeInSeconds": age if age is not None else config.target_max_event_age_seconds,
    }


def test_dlq_may_only_receive_from_this_rule(case: Any) -> None:
    synth, consumer, _ = case
    rule_id, _ = rule_of(synth, consumer)
    dlq_id = synth.output_ref(f"{consumer.pascal_name}DlqUrl")

    allows = [
        {k: v for k, v in statement.items() if k != "Sid"}
        for policy in synth.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": dlq_id} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
    ]

    assert allows == [
        {
            "Action": "sqs:SendMessage",
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}},
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": {"Fn::GetAtt": [dlq_id, "Arn"]},
        }
    ]


def test_rule_failures_and_dead_letters_raise_alarms_to_the_alarm_topic(case: Any) -> None:
    synth, consumer, _ = case
    rule_id, _ = rule_of(synth, consumer)
    topic_id = synth.output_ref("AlarmTopicArn")

    alarms = rule_alarms(synth, rule_id)

    assert set(alarms) == {"FailedInvocations", "InvocationsFailedToBeSentToDlq"}
    for alarm in alarms.values():
        # A rule on a custom bus publishes its metrics with both dimensions.
        assert {"Name": "EventBusName", "Value": {"Ref": synth.output_ref("EventBusName")}} in alarm[
            "Dimensions"
        ]
        assert alarm["Threshold"] == 1
        assert notifies_topic(alarm, topic_id)
    (depth,) = queue_depth_alarms(synth, synth.output_ref(f"{consumer.pascal_name}DlqUrl"))
    assert depth["Threshold"] == 1
    assert notifies_topic(depth, topic_id)


def test_target_arn_output_names_the_rule_target(case: Any) -> None:
    synth, consumer, _ = case
    _, rule = rule_of(synth, consumer)

    assert rule["Targets"][0]["Arn"] == synth.outputs[f"{consumer.pascal_name}TargetArn"]


@pytest.mark.parametrize("case", cases(LambdaTarget), indirect=True)
def test_lambda_consumer_has_bounded_async_retries_and_an_on_failure_queue(case: Any) -> None:
    synth, consumer, config = case
    pascal = consumer.pascal_name
    function_id = synth.output_ref(f"{pascal}FunctionName")
    failure_id = synth.output_ref(f"{pascal}FailureQueueUrl")

    (invoke_config,) = [
        r["Properties"]
        for r in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
        if r["Properties"]["FunctionName"] == {"Ref": function_id}
    ]

    assert invoke_config["MaximumRetryAttempts"] == config.lambda_retry_attempts
    assert invoke_config["MaximumEventAgeInSeconds"] == config.lambda_max_event_age_seconds
    assert invoke_config["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [failure_id, "Arn"]}}
    }
    assert failure_id != synth.output_ref(f"{pascal}DlqUrl")  # function errors never reach the rule DLQ
    assert_secure_queue(synth, failure_id)
    (depth,) = queue_depth_alarms(synth, failure_id)
    assert notifies_topic(depth, synth.output_ref("AlarmTopicArn"))


@pytest.mark.parametrize("case", cases(LambdaTarget), indirect=True)
def test_lambda_function_runtime_packaging_and_environment(case: Any) -> None:
    synth, consumer, config = case
    function = synth.props(synth.output_ref(f"{consumer.pascal_name}FunctionName"))

    assert function["Runtime"] == "python3.14"
    assert function["Architectures"] == ["arm64"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["Timeout"] == 300
    assert function["MemorySize"] == config.memory_mb(consumer)
    assert function["Handler"] == consumer.handler
    # A function that writes the table gets its writer pool size; one that starts fan-outs, the queue
    # and threshold (ingest); nothing else gets either.
    pool = {"WRITERS": str(config.writers)} if consumer.target.writes_table else {}
    fanout = (
        {
            "FANOUT_QUEUE_URL": {"Ref": synth.output_ref("RangeWorkerQueueUrl")},
            "FANOUT_THRESHOLD_BYTES": str(config.fanout_threshold_bytes),
        }
        if consumer.target.starts_fanout
        else {}
    )
    assert function["Environment"]["Variables"] == {
        "TABLE_NAME": {"Ref": synth.output_ref("TableName")},
        "REJECTS_BUCKET": {"Ref": synth.output_ref("RejectsBucketName")},
        **pool,
        **fanout,
        "POWERTOOLS_SERVICE_NAME": consumer.name,
        "POWERTOOLS_METRICS_NAMESPACE": "eventpipe",
        "POWERTOOLS_LOG_LEVEL": config.log_level,
        "POWERTOOLS_TRACE_DISABLED": "true",  # active tracing alone: no X-Ray SDK at cold start
    }
    (layer,) = function["Layers"]
    assert synth.resources[referenced_id(layer)]["Type"] == "AWS::Lambda::LayerVersion"
    log_group = synth.props(function["LoggingConfig"]["LogGroup"]["Ref"])
    assert log_group["RetentionInDays"] == config.log_retention_days


@pytest.mark.parametrize("case", cases(LambdaTarget), indirect=True)
def test_lambda_role_has_no_managed_policies(case: Any) -> None:
    synth, consumer, _ = case
    role_id = synth.props(synth.output_ref(f"{consumer.pascal_name}FunctionName"))["Role"]["Fn::GetAtt"][0]

    assert "ManagedPolicyArns" not in synth.props(role_id)


@pytest.mark.parametrize("case", cases(QueueTarget), indirect=True)
def test_queue_consumer_owns_an_encrypted_queue_with_a_backlog_alarm(case: Any) -> None:
    synth, consumer, _ = case
    queue_id = synth.output_ref(f"{consumer.pascal_name}QueueUrl")

    assert_secure_queue(synth, queue_id, retention_seconds=consumer.target.retention_days * 24 * 3600)
    (backlog,) = queue_depth_alarms(synth, queue_id)
    assert backlog["Threshold"] > 1  # read by its consumer: only a backlog is alarming


@pytest.mark.parametrize("case", cases(TopicTarget), indirect=True)
def test_topic_consumer_topic_is_encrypted_tls_only_and_publishable_by_its_rule_only(case: Any) -> None:
    synth, consumer, _ = case
    rule_id, rule = rule_of(synth, consumer)
    topic_id = referenced_id(rule["Targets"][0]["Arn"])

    assert synth.props(topic_id)["KmsMasterKeyId"] == {"Fn::GetAtt": [synth.only("AWS::KMS::Key")[0], "Arn"]}
    (policy,) = [
        p["Properties"]
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert [s["Condition"] for s in allows] == [
        {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["PolicyDocument"]["Statement"]
    )


def test_kinds_stack_covers_every_target_kind() -> None:
    from eventpipe.contract.consumers import TARGET_KINDS

    assert {c.target.kind for c in KINDS_CONSUMERS} == set(TARGET_KINDS)
    assert EXTRA_CONSUMERS[0].ignore_replays  # the replay opt-out is exercised too


def test_state_machine_consumer_logs_everything_and_traces(kinds: Synthesized) -> None:
    (machine_id, machine) = kinds.only("AWS::StepFunctions::StateMachine")
    props = machine["Properties"]

    assert kinds.outputs["ToWorkflowTargetArn"] == {"Ref": machine_id}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_bus_consumer_targets_the_given_bus_or_one_of_its_own(kinds: Synthesized) -> None:
    assert kinds.outputs["ToPartnerTargetArn"] == FOREIGN_BUS_ARN
    own = referenced_id(kinds.outputs["ToOwnBusTargetArn"])
    assert kinds.resources[own]["Type"] == "AWS::Events::EventBus"


def test_every_contract_output_exists(dev: Synthesized) -> None:
    expected = {
        "BucketName", "RejectsBucketName", "EventBusName", "EventBusArn", "ArchiveName", "ArchiveArn",
        "TableName", "AuditQueueUrl", "AlarmTopicArn", "ForwarderRuleArn", "ForwarderDlqUrl",
        "RangeWorkerFunctionName", "RangeWorkerQueueUrl", "RangeWorkerDlqUrl",
    }  # fmt: skip
    for consumer in CONSUMERS:
        suffixes = ["RuleArn", "RuleName", "DlqUrl", "TargetArn"]
        if isinstance(consumer.target, LambdaTarget):
            suffixes += ["FunctionName", "FailureQueueUrl"]
        expected |= {consumer.pascal_name + suffix for suffix in suffixes}

    assert expected <= set(dev.outputs)
    assert FOURTEEN_DAYS == 1_209_600


def test_ignore_replays_puts_the_replay_opt_out_into_the_deployed_rule(kinds: Synthesized) -> None:
    live_only = next(c for c in EXTRA_CONSUMERS if c.ignore_replays)
    _, rule = rule_of(kinds, live_only)
    _, ingest = rule_of(kinds, next(c for c in CONSUMERS if c.name == "ingest"))

    assert rule["EventPattern"]["replay-name"] == [{"exists": False}]
    assert "replay-name" not in ingest["EventPattern"]  # ingest reprocesses replays (issue 3)
