"""A deployed-looking eventpipe stack in in-process moto: the resources the stack outputs name.

Built with plain API calls rather than the CDK template, so these unit tests do not depend on the
infra or local-mode areas; the outputs follow docs/architecture.md exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from ops_fakes import BUCKET, REGION, STACK, Deployed

from eventpipe.ops.context import OpsContext, load_registry


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "EVENTPIPE_LOCAL", "EVENTPIPE_LOCAL_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # Lambda without Docker: Invoke is accepted (202) and echoes, enough for re-delivery.
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _function(session: boto3.Session, name: str, role_arn: str) -> str:
    return str(
        session.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role_arn,
            Handler="handler.lambda_handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip: never executed here
        )["FunctionArn"]
    )


@pytest.fixture
def deployed(aws: None) -> Deployed:
    session = boto3.Session(region_name=REGION)
    sqs, events = session.client("sqs"), session.client("events")
    bus_arn = events.create_event_bus(Name=f"{STACK}-bus")["EventBusArn"]
    archive_arn = events.create_archive(
        ArchiveName=f"{STACK}-archive", EventSourceArn=bus_arn, RetentionDays=30
    )["ArchiveArn"]
    role_arn = session.client("iam").create_role(
        RoleName="fn-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            }
        ),
    )["Role"]["Arn"]
    audit_url, audit_arn = _queue(sqs, f"{STACK}-audit")
    outputs = {
        "BucketName": BUCKET,
        "EventBusName": f"{STACK}-bus",
        "EventBusArn": bus_arn,
        "ArchiveName": f"{STACK}-archive",
        "ArchiveArn": archive_arn,
        "TableName": f"{STACK}-records",
        "AuditQueueUrl": audit_url,
    }
    targets = {
        "ingest": _function(session, f"{STACK}-ingest", role_arn),
        "delete-sync": _function(session, f"{STACK}-delete-sync", role_arn),
        "audit": audit_arn,
    }
    for name, target_arn in targets.items():
        prefix = "".join(part.capitalize() for part in name.split("-"))
        rule_name = f"{STACK}-{name}"
        rule_arn = events.put_rule(
            Name=rule_name, EventBusName=f"{STACK}-bus", EventPattern=json.dumps({"source": ["aws.s3"]})
        )["RuleArn"]
        dlq_url, dlq_arn = _queue(sqs, f"{STACK}-{name}-dlq")
        events.put_targets(
            Rule=rule_name,
            EventBusName=f"{STACK}-bus",
            Targets=[{"Id": "target", "Arn": target_arn, "DeadLetterConfig": {"Arn": dlq_arn}}],
        )
        outputs |= {
            f"{prefix}RuleArn": rule_arn,
            f"{prefix}RuleName": rule_name,
            f"{prefix}DlqUrl": dlq_url,
            f"{prefix}TargetArn": target_arn,
        }
        if target_arn.startswith("arn:aws:lambda"):
            outputs[f"{prefix}FunctionName"] = f"{STACK}-{name}"
            outputs[f"{prefix}FailureQueueUrl"] = _queue(sqs, f"{STACK}-{name}-failures")[0]
    forwarder_arn = events.put_rule(
        Name=f"{STACK}-forwarder", EventPattern=json.dumps({"source": ["aws.s3"]})
    )["RuleArn"]
    outputs |= {
        "ForwarderRuleArn": forwarder_arn,
        "ForwarderDlqUrl": _queue(sqs, f"{STACK}-forwarder-dlq")[0],
    }
    # The fan-out's range worker: its work queue moves a task to the DLQ after 3 receives, as deployed.
    work_dlq_url, work_dlq_arn = _queue(sqs, f"{STACK}-range-work-dlq")
    work_url = sqs.create_queue(
        QueueName=f"{STACK}-range-work",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": work_dlq_arn, "maxReceiveCount": 3})},
    )["QueueUrl"]
    _function(session, f"{STACK}-range-worker", role_arn)
    outputs |= {
        "RangeWorkerFunctionName": f"{STACK}-range-worker",
        "RangeWorkerQueueUrl": work_url,
        "RangeWorkerDlqUrl": work_dlq_url,
    }
    # The shipped consumers only: a consumer scaffolded later (`consumers new`) is not in this stack.
    registry = tuple(entry for entry in load_registry() if entry.name in targets)
    ctx = OpsContext.from_outputs(outputs, stack=STACK, region=REGION, session=session, registry=registry)
    return Deployed(ctx=ctx, outputs=outputs, sqs=sqs)
