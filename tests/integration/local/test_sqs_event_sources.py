"""SQS event source mappings in local mode behave like Lambda's pollers (docs/local-mode.md, H13).

A module emulator deploys a small template of its own (a work queue with a redrive policy to a DLQ,
probe functions of `lambda_probes.py`, two `AWS::Lambda::EventSourceMapping`s), the same way the
stack's range-worker mapping is deployed. Each test name states the AWS behaviour it reproduces.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from eventpipe.local.emulator import Emulator
from tests.integration.conftest import poll

PROBES = "tests.integration.local.lambda_probes"
LIMIT = 2  # MaximumConcurrency of the counted mapping
pytestmark = pytest.mark.integration


def _function(handler: str, environment: dict[str, str], timeout: int = 30) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Handler": f"{PROBES}.{handler}",
            "Runtime": "python3.14",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "run by the local runtime"},
            "Timeout": timeout,
            "Environment": {"Variables": environment},
        },
    }


def _template(work_dir: Path) -> dict[str, Any]:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    return {
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}},
            "DeadLetters": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "WorkQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": 30,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetters", "Arn"]},
                        "maxReceiveCount": 3,
                    },
                },
            },
            "Worker": _function("sqs_batch", {"RECORD_FILE": str(work_dir / "records.jsonl")}),
            "WorkMapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "FunctionName": {"Ref": "Worker"},
                    "EventSourceArn": {"Fn::GetAtt": ["WorkQueue", "Arn"]},
                    "BatchSize": 10,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            },
            "CountQueue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 60}},
            "Counter": _function(
                "concurrency_counter",
                {"COUNTER_FILE": str(work_dir / "counter.json"), "LIMIT": str(LIMIT), "HOLD_SECONDS": "1"},
            ),
            "CountMapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "FunctionName": {"Ref": "Counter"},
                    "EventSourceArn": {"Fn::GetAtt": ["CountQueue", "Arn"]},
                    "BatchSize": 1,
                    "ScalingConfig": {"MaximumConcurrency": LIMIT},
                },
            },
        },
        "Outputs": {
            "WorkQueueUrl": {"Value": {"Ref": "WorkQueue"}},
            "WorkQueueArn": {"Value": {"Fn::GetAtt": ["WorkQueue", "Arn"]}},
            "DeadLettersUrl": {"Value": {"Ref": "DeadLetters"}},
            "CountQueueUrl": {"Value": {"Ref": "CountQueue"}},
            "Worker": {"Value": {"Ref": "Worker"}},
            "Counter": {"Value": {"Ref": "Counter"}},
        },
    }


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sqs-esm")


@pytest.fixture(scope="module")
def emulator(work_dir: Path) -> Iterator[Emulator]:
    template = work_dir / "template.json"
    template.write_text(json.dumps(_template(work_dir)))
    # Four warm environments per function, so MaximumConcurrency (2), not the runtime, is the limit.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVENTPIPE_LOCAL_LAMBDA_CONCURRENCY", "4")
        running = Emulator.start(port=0, template=template, state_dir=work_dir / "state")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def sqs(emulator: Emulator) -> Any:
    return emulator.client("sqs")


@pytest.fixture(scope="module")
def lambda_client(emulator: Emulator) -> Any:
    return emulator.client("lambda")


def _records(work_dir: Path) -> list[list[dict[str, Any]]]:
    path = work_dir / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _invocations_with(work_dir: Path, body: str) -> list[list[dict[str, Any]]]:
    return [batch for batch in _records(work_dir) if any(r["body"] == body for r in batch)]


def _mapping(emulator: Emulator, function: str) -> dict[str, Any]:
    mappings = emulator.status()["event_source_mappings"]
    return next(m for m in mappings if m["function"] == emulator.outputs[function])


def _queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    visible, in_flight = "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"
    return int(attributes[visible]), int(attributes[in_flight])


def _send_as_one_batch(emulator: Emulator, sqs: Any, lambda_client: Any, bodies: list[str]) -> None:
    """Disable the work mapping until its poller is parked, send, enable: one receive gets them all."""
    uuid_ = _mapping(emulator, "Worker")["uuid"]
    lambda_client.update_event_source_mapping(UUID=uuid_, Enabled=False)
    poll(
        lambda: (m := _mapping(emulator, "Worker"))["state"] == "Disabled" and not m["polling"],
        message="the disabled mapping's poller to park",
    )
    sqs.send_message_batch(
        QueueUrl=emulator.outputs["WorkQueueUrl"],
        Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)],
    )
    assert _queue_counts(sqs, emulator.outputs["WorkQueueUrl"]) == (len(bodies), 0)  # Enabled=false: unread
    lambda_client.update_event_source_mapping(UUID=uuid_, Enabled=True)


def _dead_letter(sqs: Any, emulator: Emulator, body: str) -> dict[str, Any] | None:
    answer = sqs.receive_message(
        QueueUrl=emulator.outputs["DeadLettersUrl"],
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        VisibilityTimeout=0,
    )
    return next((m for m in answer.get("Messages", []) if m["Body"] == body), None)


def test_a_message_is_delivered_in_lambdas_sqs_event_and_deleted_after_success(
    emulator: Emulator, sqs: Any, work_dir: Path
) -> None:
    body = f"ok-{uuid.uuid4()}"
    url = emulator.outputs["WorkQueueUrl"]
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
    )

    [batch] = poll(lambda: _invocations_with(work_dir, body), message="the worker's invocation")
    emulator.wait_idle(timeout=30)

    [record] = batch
    assert record["messageId"] == sent["MessageId"]
    assert record["receiptHandle"]
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == emulator.outputs["WorkQueueArn"]
    assert record["awsRegion"] == emulator.region
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["messageAttributes"]["origin"]["stringValue"] == "test"
    assert record["messageAttributes"]["origin"]["dataType"] == "String"
    assert _queue_counts(sqs, url) == (0, 0)  # deleted, not merely invisible


def test_partial_batch_response_deletes_all_but_the_reported_failures(
    emulator: Emulator, sqs: Any, lambda_client: Any, work_dir: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    good, bad, other = f"ok-{tag}-a", f"fail-{tag}", f"ok-{tag}-c"
    _send_as_one_batch(emulator, sqs, lambda_client, [good, bad, other])

    poll(lambda: _dead_letter(sqs, emulator, bad), timeout=30, message="the failure in the DLQ")

    first = _invocations_with(work_dir, good)
    assert len(first) == 1
    assert {r["body"] for r in first[0]} == {good, bad, other}
    assert len(_invocations_with(work_dir, other)) == 1  # deleted after the first invocation
    records = [r for batch in _invocations_with(work_dir, bad) for r in batch if r["body"] == bad]
    counts = [r["attributes"]["ApproximateReceiveCount"] for r in records]
    assert counts == ["1", "2", "3"]  # retried after each visibility timeout, then dead-lettered


def test_a_function_error_deletes_none_and_the_queue_redrives_after_max_receive_count(
    emulator: Emulator, sqs: Any, lambda_client: Any, work_dir: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    innocent, culprit = f"ok-{tag}", f"raise-{tag}"
    _send_as_one_batch(emulator, sqs, lambda_client, [innocent, culprit])

    poll(lambda: _dead_letter(sqs, emulator, culprit), timeout=30, message="the culprit in the DLQ")
    poll(lambda: _dead_letter(sqs, emulator, innocent), timeout=30, message="its batch mate in the DLQ")

    invocations = _invocations_with(work_dir, culprit)
    assert len(invocations) == 3  # maxReceiveCount receives, then SQS moved it
    assert {r["body"] for r in invocations[0]} == {innocent, culprit}  # failed together, kept together
    assert len(_invocations_with(work_dir, innocent)) == 3
    assert _mapping(emulator, "Worker")["function_errors"] >= 3


def test_maximum_concurrency_caps_concurrent_invocations_of_the_mapping(
    emulator: Emulator, sqs: Any, work_dir: Path
) -> None:
    url = emulator.outputs["CountQueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": str(n)} for n in range(6)])

    poll(
        lambda: (
            json.loads((work_dir / "counter.json").read_text() or "{}").get("done") == 6
            if (work_dir / "counter.json").exists()
            else False
        ),
        timeout=60,
        message="six invocations",
    )
    emulator.wait_idle(timeout=30)

    counter = json.loads((work_dir / "counter.json").read_text())
    assert counter["peak"] == LIMIT  # concurrency happened, and never beyond MaximumConcurrency
    mapping = _mapping(emulator, "Counter")
    assert mapping["maximum_concurrency"] == LIMIT
    assert mapping["peak_concurrency"] == LIMIT
    assert mapping["deleted"] == 6
    assert _queue_counts(sqs, url) == (0, 0)


def test_lambda_refuses_a_mapping_whose_function_outlives_the_visibility_timeout(
    emulator: Emulator, sqs: Any, lambda_client: Any
) -> None:
    queue = sqs.create_queue(QueueName=f"short-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "5"})
    arn = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    with pytest.raises(ClientError) as refused:
        lambda_client.create_event_source_mapping(EventSourceArn=arn, FunctionName=emulator.outputs["Worker"])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "Queue visibility timeout: 5 seconds is less than Function timeout: 30 seconds" in str(
        refused.value
    )
    # boto3 checks the minimum itself; a template reaches the service unchecked.
    unchecked = emulator.client("lambda", config=Config(parameter_validation=False))
    with pytest.raises(ClientError, match="MaximumConcurrency"):
        unchecked.create_event_source_mapping(
            EventSourceArn=emulator.outputs["WorkQueueArn"],
            FunctionName=emulator.outputs["Worker"],
            ScalingConfig={"MaximumConcurrency": 1},
        )


def test_local_status_lists_each_mapping_with_its_function(emulator: Emulator) -> None:
    from eventpipe.ops.main import app

    arguments = ["local", "status", "--state-dir", str(emulator.state_dir)]
    result = CliRunner().invoke(app, arguments, env=os.environ)

    assert result.exit_code == 0, result.output
    for function in (emulator.outputs["Worker"], emulator.outputs["Counter"]):
        assert any("sqs" in line and function in line for line in result.output.splitlines())
