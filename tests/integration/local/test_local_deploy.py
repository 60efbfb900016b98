"""The real synthesized template, deployed into the emulator, yields what CloudFormation would create
on AWS: each test names the template adaptation (eventpipe/local/template_adaptation.py; catalogue in
docs/local-mode.md) it guards."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def template(emulator: Any) -> dict[str, Any]:
    return dict(json.loads(Path(emulator.state["template"]).read_text()))


def resources_of(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_every_declared_output_is_a_real_value(template: dict[str, Any], outputs: dict[str, str]) -> None:
    """AWS: every Output of the template is there, and `Ref` to a bus or archive is its name (H7,
    moto alone renders the Python object)."""
    assert set(outputs) == set(template["Outputs"])
    assert not [key for key, value in outputs.items() if "object at 0x" in value]
    assert re.fullmatch(r"[\w.\-]+", outputs["EventBusName"])
    assert outputs["ArchiveArn"].endswith(f"archive/{outputs['ArchiveName']}")


def test_buckets_get_versioning_and_eventbridge_notifications(
    template: dict[str, Any], emulator: Any, aws: Any
) -> None:
    """AWS: VersioningConfiguration and NotificationConfiguration.EventBridgeConfiguration of each
    bucket take effect (T6; moto's bucket resource ignores both)."""
    s3, cloudformation = aws("s3"), aws("cloudformation")
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cloudformation.describe_stack_resources(StackName=emulator.stack)["StackResources"]
        if "LogicalResourceId" in r
    }
    for logical_id, bucket in resources_of(template, "AWS::S3::Bucket").items():
        props = bucket["Properties"]
        versioning = s3.get_bucket_versioning(Bucket=physical[logical_id]).get("Status")
        assert versioning == props.get("VersioningConfiguration", {}).get("Status"), logical_id
        wants_events = bool(
            props.get("NotificationConfiguration", {})
            .get("EventBridgeConfiguration", {})
            .get("EventBridgeEnabled")
        )
        notification = s3.get_bucket_notification_configuration(Bucket=physical[logical_id])
        assert ("EventBridgeConfiguration" in notification) == wants_events, logical_id


def test_lambda_event_invoke_configs_are_applied(
    template: dict[str, Any], outputs: dict[str, str], aws: Any
) -> None:
    """AWS: each AWS::Lambda::EventInvokeConfig sets the function's async retries, event age and
    on-failure destination (T6; not a moto CloudFormation type)."""
    client = aws("lambda")
    declared = resources_of(template, "AWS::Lambda::EventInvokeConfig")
    # The range worker is invoked synchronously by its SQS event source: it has no async invoke config.
    names = [v for k, v in outputs.items() if k.endswith("FunctionName") and k != "RangeWorkerFunctionName"]
    configs = [client.get_function_event_invoke_config(FunctionName=name) for name in names]

    assert len(configs) == len(declared)
    wanted = {
        (r["Properties"]["MaximumRetryAttempts"], r["Properties"]["MaximumEventAgeInSeconds"])
        for r in declared.values()
    }
    assert {(c["MaximumRetryAttempts"], c["MaximumEventAgeInSeconds"]) for c in configs} == wanted
    for config in configs:
        assert config["DestinationConfig"]["OnFailure"]["Destination"].startswith("arn:aws:sqs:")


def test_alarms_exist(template: dict[str, Any], emulator: Any, aws: Any) -> None:
    """AWS: every AWS::CloudWatch::Alarm of the stack is listed by DescribeAlarms, with its resolved
    dimensions and actions (T9; moto's CloudFormation skips alarms)."""
    declared = resources_of(template, "AWS::CloudWatch::Alarm")
    alarms = aws("cloudwatch").describe_alarms(AlarmNamePrefix=f"{emulator.stack}-")["MetricAlarms"]

    assert len(alarms) == len(declared)
    for alarm in alarms:
        assert all(isinstance(d["Value"], str) for d in alarm.get("Dimensions", []))
        assert all(action.startswith("arn:aws:sns:") for action in alarm.get("AlarmActions", []))
