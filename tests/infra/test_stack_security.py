"""Security and compliance of the synthesized templates: IAM, custom resources, cdk-nag, cfn-lint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from infra_template import Synthesized, as_list

LAMBDA_RUNTIME_ACTIONS = {
    "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
    "sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
}  # fmt: skip


@pytest.fixture(params=["dev", "kinds"])
def synth(request: pytest.FixtureRequest) -> Synthesized:
    return request.getfixturevalue(request.param)


def test_no_allow_statement_has_a_wildcard_action(synth: Synthesized) -> None:
    # Deny statements may (the TLS-only policies deny `s3:*` / `sqs:*` without TLS); grants may not.
    wildcards = [
        (logical_id, action)
        for logical_id, statement in synth.statements()
        if statement["Effect"] == "Allow"
        for action in as_list(statement.get("Action", []))
        if "*" in action
    ]

    assert wildcards == []


def test_no_custom_resources_and_no_hidden_functions(synth: Synthesized) -> None:
    custom = [r["Type"] for r in synth.resources.values() if r["Type"].startswith("Custom::")]
    custom += [
        r["Type"] for r in synth.resources.values() if r["Type"] == "AWS::CloudFormation::CustomResource"
    ]
    functions = set(synth.of_type("AWS::Lambda::Function"))
    consumer_functions = {synth.output_ref(k) for k in synth.outputs if k.endswith("FunctionName")}

    assert custom == []
    assert functions == consumer_functions


def role_actions(synth: Synthesized, output: str) -> dict[str, Any]:
    """Action -> resources of the role of the function behind `output`, minus the runtime basics."""
    role_id = synth.props(synth.output_ref(output))["Role"]["Fn::GetAtt"][0]
    granted: dict[str, Any] = {}
    for logical_id, statement in synth.statements():
        if synth.props(logical_id).get("Roles") == [{"Ref": role_id}]:
            for action in as_list(statement["Action"]):
                if action not in LAMBDA_RUNTIME_ACTIONS:
                    granted[action] = statement["Resource"]
    return granted


# delete-sync re-ingests the version a permanent delete makes current again: ingest's set, nothing more
# (no s3:DeleteObject on the ingest bucket, no s3:PutObject outside the rejects bucket).
@pytest.mark.parametrize("function_output", ["IngestFunctionName", "DeleteSyncFunctionName"])
def test_object_reading_roles_hold_exactly_the_ingest_write_path_permissions(
    dev: Synthesized, function_output: str
) -> None:
    bucket, rejects, table = (dev.output_ref(k) for k in ("BucketName", "RejectsBucketName", "TableName"))
    table_arn = {"Fn::GetAtt": [table, "Arn"]}
    index_arn = {"Fn::Join": ["", [table_arn, "/index/by-owner"]]}

    granted = role_actions(dev, function_output)

    assert granted == {
        "s3:GetObject": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]},
        "s3:GetObjectVersion": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]},
        "s3:ListBucket": {"Fn::GetAtt": [bucket, "Arn"]},
        "s3:PutObject": {"Fn::Join": ["", [{"Fn::GetAtt": [rejects, "Arn"]}, "/*"]]},
        "s3:DeleteObject": {"Fn::Join": ["", [{"Fn::GetAtt": [rejects, "Arn"]}, "/*"]]},
        "dynamodb:GetItem": [table_arn, index_arn],
        "dynamodb:BatchGetItem": [table_arn, index_arn],
        "dynamodb:Query": [table_arn, index_arn],
        "dynamodb:ConditionCheckItem": [table_arn, index_arn],
        "dynamodb:PutItem": table_arn,
        "dynamodb:UpdateItem": table_arn,
        "dynamodb:DeleteItem": table_arn,
        "dynamodb:BatchWriteItem": table_arn,
    }


def test_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(dev: Synthesized) -> None:
    topic_id = dev.output_ref("AlarmTopicArn")
    key_id, key = dev.only("AWS::KMS::Key")
    publishers = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s.get("Principal", {})
    ]

    assert dev.props(topic_id)["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    # dev has no topic consumer: CloudWatch is the only service that may use the key.
    (cloudwatch,) = publishers
    assert cloudwatch["Principal"]["Service"] == "cloudwatch.amazonaws.com"
    assert sorted(as_list(cloudwatch["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert cloudwatch["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


# SNS developer guide, "Managing Amazon SNS encryption keys and costs" > "Enable compatibility between
# event sources from AWS services and encrypted topics"
# (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services):
# these conditions in a KMS key policy are not supported for EventBridge-to-encrypted-topic delivery.
UNSUPPORTED_FOR_EVENTBRIDGE = {"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid"}


def condition_keys(statement: dict[str, Any]) -> set[str]:
    return {key.lower() for keys in statement.get("Condition", {}).values() for key in keys}


def test_eventbridge_may_use_the_topic_key_without_unsupported_source_conditions(kinds: Synthesized) -> None:
    # `kinds` has a topic consumer (`to-topic`): EventBridge must be able to publish to its topic.
    key_id, key = kinds.only("AWS::KMS::Key")
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    for_eventbridge = [
        s for s in statements if "events.amazonaws.com" in as_list(s.get("Principal", {}).get("Service", []))
    ]
    topic_id = kinds.output_ref("ToTopicTargetArn")

    assert kinds.props(topic_id)["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    (statement,) = for_eventbridge
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert condition_keys(statement) & UNSUPPORTED_FOR_EVENTBRIDGE == set()
    # What may publish is scoped by the topic policy instead: only the consumer's rule.
    rule_arn = {"Fn::GetAtt": [kinds.output_ref("ToTopicRuleArn"), "Arn"]}
    publishers = [
        s
        for policy in kinds.of_type("AWS::SNS::TopicPolicy").values()
        if policy["Properties"]["Topics"] == [{"Ref": topic_id}]
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert [s["Condition"] for s in publishers] == [{"ArnEquals": {"aws:SourceArn": rule_arn}}]


def test_the_key_lets_eventbridge_in_only_when_a_topic_consumer_needs_it(dev: Synthesized) -> None:
    _, key = dev.only("AWS::KMS::Key")

    assert not any(
        "events.amazonaws.com" in as_list(s.get("Principal", {}).get("Service", []))
        for s in key["Properties"]["KeyPolicy"]["Statement"]
    )


def test_account_principals_may_use_the_topic_key_only_through_sns(dev: Synthesized) -> None:
    _, key = dev.only("AWS::KMS::Key")
    via_sns = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "PublishThroughSnsFromThisAccount"
    ]

    assert len(via_sns) == 1
    assert sorted(as_list(via_sns[0]["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    condition = via_sns[0]["Condition"]["StringEquals"]["kms:ViaService"]
    assert "sns." in json.dumps(condition)


def test_alarm_email_subscription_only_when_configured(dev: Synthesized, kinds: Synthesized) -> None:
    from stack_fixtures import KINDS_EMAIL

    assert dev.of_type("AWS::SNS::Subscription") == {}
    (_, subscription) = kinds.only("AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == KINDS_EMAIL
    assert subscription["Properties"]["TopicArn"] == {"Ref": kinds.output_ref("AlarmTopicArn")}


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Synthesized) -> None:
    # Synthesis already raised on any finding; the report must be empty too.
    report = json.loads((synth.outdir / "validation-report.json").read_text())

    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]

    assert violations == []


def test_cdk_nag_does_fail_synthesis_on_a_finding(tmp_path: Path) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_sqs as sqs

    from infra.nag import enable_nag

    app = App(outdir=str(tmp_path))
    sqs.Queue(Stack(app, "Insecure"), "PlainQueue")
    enable_nag(app)

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules


def test_cfn_lint_finds_no_errors(synth: Synthesized) -> None:
    from cfnlint.api import lint_all

    matches = lint_all(json.dumps(synth.template))
    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.severity == "error"]

    assert errors == []


def acknowledgements(synth: Synthesized) -> list[tuple[str, str, str]]:
    """(construct path, finding id, reason) of every cdk-nag acknowledgement in the assembly."""
    metadata = json.loads((synth.outdir / f"{synth.stack_name}.metadata.json").read_text())
    return [
        (path, finding.removeprefix("Annotation::"), reason)
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for finding, reason in entry["data"].items()
    ]


def test_each_acknowledgement_is_scoped_to_a_finding_on_its_construct(synth: Synthesized) -> None:
    acknowledged = acknowledgements(synth)

    assert acknowledged, "expected the known, justified acknowledgements"
    for path, finding, reason in acknowledged:
        assert path.count("/") >= 2, f"{finding} acknowledged too broadly at {path}"
        assert finding == "AwsSolutions-SQS3" or finding.startswith("AwsSolutions-IAM5[Resource::"), finding
        assert len(reason) >= 40, f"{finding} at {path} needs a real reason"
    sqs3 = {path for path, finding, _ in acknowledged if finding == "AwsSolutions-SQS3"}
    assert all(path.rsplit("/", 1)[-1] in {"DeadLetterQueue", "FailureQueue", "Queue"} for path in sqs3)
