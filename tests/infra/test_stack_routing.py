"""Default bus -> forwarder -> project bus (+ archive of everything)."""

from __future__ import annotations

from typing import Any

from infra_template import Synthesized, assert_secure_queue, notifies_topic, queue_depth_alarms, rule_alarms


def forwarder(dev: Synthesized) -> tuple[str, dict[str, Any]]:
    rule_id = dev.output_ref("ForwarderRuleArn")
    return rule_id, dev.props(rule_id)


def test_forwarder_listens_on_the_default_bus_to_this_buckets_s3_events(dev: Synthesized) -> None:
    _, rule = forwarder(dev)

    assert "EventBusName" not in rule  # the default bus: the only one S3 publishes to
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail": {"bucket": {"name": [{"Ref": dev.output_ref("BucketName")}]}},
    }


def test_forwarder_targets_the_project_bus_with_a_dead_letter_queue(dev: Synthesized) -> None:
    _, rule = forwarder(dev)
    (target,) = rule["Targets"]
    dlq_id = dev.output_ref("ForwarderDlqUrl")

    assert target["Arn"] == {"Fn::GetAtt": [dev.output_ref("EventBusArn"), "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    assert_secure_queue(dev, dlq_id)
    # EventBridge refuses a RetryPolicy on event-bus targets; delivery retries are its own.
    assert "RetryPolicy" not in target


def test_forwarder_role_may_only_put_events_on_the_project_bus(dev: Synthesized) -> None:
    _, rule = forwarder(dev)
    role_id = rule["Targets"][0]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        s for policy_id, s in dev.statements() if dev.props(policy_id).get("Roles") == [{"Ref": role_id}]
    ]

    assert statements == [
        {
            "Action": "events:PutEvents",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [dev.output_ref("EventBusArn"), "Arn"]},
        }
    ]


def test_forwarder_role_may_be_assumed_only_by_eventbridge_for_this_rule_of_this_account(
    dev: Synthesized,
) -> None:
    # "For EventBridge event bus rule targets, the value of aws:SourceArn must be the rule ARN"
    # (EventBridge user guide, "Cross-service confused deputy prevention in Amazon EventBridge").
    _, rule = forwarder(dev)
    role_id = rule["Targets"][0]["RoleArn"]["Fn::GetAtt"][0]
    rule_arn = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":events:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":rule/{rule['Name']}",
            ],
        ]
    }

    (trust,) = dev.props(role_id)["AssumeRolePolicyDocument"]["Statement"]

    assert rule["Name"] == f"{dev.stack_name}-forwarder"
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnEquals": {"aws:SourceArn": rule_arn},
    }


def test_forwarder_alarms_use_the_default_bus_metric_dimensions(dev: Synthesized) -> None:
    rule_id, _ = forwarder(dev)
    topic_id = dev.output_ref("AlarmTopicArn")

    alarms = rule_alarms(dev, rule_id)

    assert set(alarms) == {"FailedInvocations", "InvocationsFailedToBeSentToDlq"}
    for alarm in alarms.values():
        assert alarm["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule_id}}]
        assert notifies_topic(alarm, topic_id)
    (depth,) = queue_depth_alarms(dev, dev.output_ref("ForwarderDlqUrl"))
    assert depth["Threshold"] == 1
    assert notifies_topic(depth, topic_id)


def test_archive_keeps_every_event_of_the_project_bus(dev: Synthesized, dev_config: Any) -> None:
    archive_id = dev.output_ref("ArchiveName")
    archive = dev.props(archive_id)

    assert dev.output_ref("ArchiveArn") == archive_id
    assert archive["SourceArn"] == {"Fn::GetAtt": [dev.output_ref("EventBusName"), "Arn"]}
    assert "EventPattern" not in archive  # no pattern: everything is archived
    assert archive["RetentionDays"] == dev_config.archive_retention_days


def test_prod_archive_retention_comes_from_prod_config(kinds: Synthesized, prod_config: Any) -> None:
    assert (
        kinds.props(kinds.output_ref("ArchiveName"))["RetentionDays"]
        == prod_config.archive_retention_days
        == 365
    )
