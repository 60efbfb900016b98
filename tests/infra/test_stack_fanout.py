"""The fan-out's resources: the range work queue, its DLQ, the event source mapping, the range worker.

AWS facts these tests hold the template to (checked 2026-11 with the docs search):
- Lambda developer guide, "Creating and configuring an Amazon SQS event source mapping": the source
  queue's visibility timeout at least six times the function's timeout.
- CloudFormation, "AWS::Lambda::EventSourceMapping ScalingConfig": MaximumConcurrency 2..1000.
- CloudFormation, "AWS::Lambda::EventSourceMapping OnFailure": on-failure destinations for Kinesis,
  DynamoDB, Kafka and MSK sources only; an SQS source fails into its queue's redrive DLQ.
- SQS developer guide, "Setting-up dead-letter queue retention": a standard queue's message keeps its
  enqueue time in the DLQ, so the DLQ must retain longer than the source queue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from infra_template import FOURTEEN_DAYS, Synthesized, as_list, assert_secure_queue
from stack_fixtures import CDK_CONTEXT, KINDS_CONTEXT, synth

from eventpipe.contract.consumers import Consumer, LambdaTarget
from functions.core.domain.range_task import PARTS_PREFIX
from infra.config import load_config
from infra.registry import CONSUMERS

FOUR_DAYS = 4 * 24 * 3600


@pytest.fixture(params=["dev", "kinds"])
def stack(request: pytest.FixtureRequest) -> Synthesized:
    return request.getfixturevalue(request.param)


def config_of(stack: Synthesized) -> Any:
    return load_config((KINDS_CONTEXT if stack.stack_name == "eventpipe-prod" else CDK_CONTEXT).get)


def worker(stack: Synthesized) -> dict[str, Any]:
    return stack.props(stack.output_ref("RangeWorkerFunctionName"))


def mapping(stack: Synthesized) -> dict[str, Any]:
    _, esm = stack.only("AWS::Lambda::EventSourceMapping")
    return dict(esm["Properties"])


def role_grants(stack: Synthesized, function_output: str) -> dict[str, Any]:
    """Action -> resource of every statement of the function's role, logs and tracing left out."""
    role_id = stack.props(stack.output_ref(function_output))["Role"]["Fn::GetAtt"][0]
    granted: dict[str, Any] = {}
    for logical_id, statement in stack.statements():
        if stack.props(logical_id).get("Roles") == [{"Ref": role_id}]:
            for action in as_list(statement["Action"]):
                if not action.startswith(("logs:", "xray:")):
                    granted.setdefault(action, []).append(statement["Resource"])
    return granted


def test_work_queue_is_secure_and_gives_a_task_three_receives_before_its_dlq(stack: Synthesized) -> None:
    queue_id, dlq_id = stack.output_ref("RangeWorkerQueueUrl"), stack.output_ref("RangeWorkerDlqUrl")
    queue = stack.props(queue_id)

    assert_secure_queue(stack, queue_id, retention_seconds=FOUR_DAYS)
    assert_secure_queue(stack, dlq_id, retention_seconds=FOURTEEN_DAYS)
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 3,
    }
    # A dead task keeps its original enqueue time: the DLQ must outlive the work queue's retention.
    assert stack.props(dlq_id)["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_visibility_timeout_is_six_times_the_worker_timeout_of_fifteen_minutes(stack: Synthesized) -> None:
    queue = stack.props(stack.output_ref("RangeWorkerQueueUrl"))

    assert worker(stack)["Timeout"] == 900  # a range must finish inside one invocation: the maximum
    assert queue["VisibilityTimeout"] == 6 * worker(stack)["Timeout"]


def test_the_worker_takes_one_task_at_a_time_reports_partial_failures_and_is_bounded(
    stack: Synthesized,
) -> None:
    esm = mapping(stack)

    assert esm["EventSourceArn"] == {"Fn::GetAtt": [stack.output_ref("RangeWorkerQueueUrl"), "Arn"]}
    assert esm["FunctionName"] == {"Ref": stack.output_ref("RangeWorkerFunctionName")}
    assert esm["BatchSize"] == 1
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["ScalingConfig"] == {"MaximumConcurrency": config_of(stack).fanout_max_concurrency}
    # SQS sources have no on-failure destination: the queue's redrive policy is the failure path.
    assert "DestinationConfig" not in esm


def test_the_worker_gets_the_ingest_function_treatment(stack: Synthesized) -> None:
    ingest = stack.props(stack.output_ref("IngestFunctionName"))
    function = worker(stack)
    config = config_of(stack)
    same = ("Runtime", "Architectures", "Layers", "TracingConfig", "Code")

    assert {key: function[key] for key in same} == {key: ingest[key] for key in same}
    # CPU-bound: one vCPU's worth of memory (infra/config.py, fanout_memory_mb), whatever ingest has
    assert function["MemorySize"] == config.fanout_memory_mb == 1769
    assert ingest["MemorySize"] == config.function_memory_mb.get("ingest", 512)
    assert function["Handler"] == "functions.range_worker.handler.lambda_handler"
    assert function["Environment"]["Variables"] == {
        "TABLE_NAME": {"Ref": stack.output_ref("TableName")},
        "REJECTS_BUCKET": {"Ref": stack.output_ref("RejectsBucketName")},
        "WRITERS": str(config.writers),
        # where a continuation that runs out of time hands over again (fan_out.continue_elsewhere)
        "FANOUT_QUEUE_URL": {"Ref": stack.output_ref("RangeWorkerQueueUrl")},
        "POWERTOOLS_SERVICE_NAME": "range-worker",
        "POWERTOOLS_METRICS_NAMESPACE": "eventpipe",
        "POWERTOOLS_LOG_LEVEL": config.log_level,
        "POWERTOOLS_TRACE_DISABLED": "true",  # active tracing alone, like every function
    }
    logs = stack.resources[function["LoggingConfig"]["LogGroup"]["Ref"]]
    assert logs["Properties"]["RetentionInDays"] == config.log_retention_days
    role = stack.props(function["Role"]["Fn::GetAtt"][0])
    assert "ManagedPolicyArns" not in role


def test_prod_retains_the_dead_tasks(kinds: Synthesized) -> None:
    dlq = kinds.resources[kinds.output_ref("RangeWorkerDlqUrl")]

    assert dlq["DeletionPolicy"] == "Retain"
    # a function_memory_mb override of ingest (cdk.json's prod: 1024) is ingest's, not the worker's
    assert worker(kinds)["MemorySize"] == config_of(kinds).fanout_memory_mb


def test_worker_role_holds_ingests_write_path_its_queue_and_reading_rejects_parts(dev: Synthesized) -> None:
    bucket, rejects, table = (dev.output_ref(k) for k in ("BucketName", "RejectsBucketName", "TableName"))
    queue_arn = {"Fn::GetAtt": [dev.output_ref("RangeWorkerQueueUrl"), "Arn"]}
    table_arn = {"Fn::GetAtt": [table, "Arn"]}
    index_arn = {"Fn::Join": ["", [table_arn, "/index/by-owner"]]}
    objects = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}
    rejects_objects = {"Fn::Join": ["", [{"Fn::GetAtt": [rejects, "Arn"]}, "/*"]]}

    granted = role_grants(dev, "RangeWorkerFunctionName")

    assert granted == {
        "s3:GetObject": [objects, rejects_objects],
        "s3:GetObjectVersion": [objects],
        "s3:ListBucket": [[{"Fn::GetAtt": [bucket, "Arn"]}, {"Fn::GetAtt": [rejects, "Arn"]}]],
        "s3:PutObject": [rejects_objects],
        "s3:DeleteObject": [rejects_objects],
        "dynamodb:GetItem": [[table_arn, index_arn]],
        "dynamodb:BatchGetItem": [[table_arn, index_arn]],
        "dynamodb:Query": [[table_arn, index_arn]],
        "dynamodb:ConditionCheckItem": [[table_arn, index_arn]],
        "dynamodb:PutItem": [table_arn],
        "dynamodb:UpdateItem": [table_arn],
        "dynamodb:DeleteItem": [table_arn],
        "dynamodb:BatchWriteItem": [table_arn],
        # What the event source mapping polls with (CDK's SqsEventSource grant), on this queue only.
        "sqs:ReceiveMessage": [queue_arn],
        "sqs:ChangeMessageVisibility": [queue_arn],
        "sqs:GetQueueUrl": [queue_arn],
        "sqs:DeleteMessage": [queue_arn],
        "sqs:GetQueueAttributes": [queue_arn],
        # a continuation hands over again to its own queue (fan_out.continue_elsewhere)
        "sqs:SendMessage": [queue_arn],
    }


def test_only_ingest_delete_sync_and_the_worker_send_range_tasks_and_learn_where(
    dev: Synthesized,
) -> None:
    queue_arn = {"Fn::GetAtt": [dev.output_ref("RangeWorkerQueueUrl"), "Arn"]}
    senders = sorted(
        logical_id
        for logical_id, statement in dev.statements()
        if "sqs:SendMessage" in as_list(statement["Action"]) and statement["Resource"] == queue_arn
    )
    ingest = dev.props(dev.output_ref("IngestFunctionName"))
    delete_sync = dev.props(dev.output_ref("DeleteSyncFunctionName"))
    worker_role = worker(dev)["Role"]["Fn::GetAtt"][0]

    roles = sorted(role["Ref"] for policy in senders for role in dev.props(policy)["Roles"])
    # delete-sync hands a delete that runs out of time to a continuation (delete_sync.apply_delete).
    starters = [ingest["Role"]["Fn::GetAtt"][0], delete_sync["Role"]["Fn::GetAtt"][0]]
    assert roles == sorted([*starters, worker_role])
    for function in (ingest, delete_sync):
        assert function["Environment"]["Variables"]["FANOUT_QUEUE_URL"] == {
            "Ref": dev.output_ref("RangeWorkerQueueUrl")
        }


def test_context_overrides_reach_the_mapping_and_ingest(tmp_path: Path) -> None:
    context = {
        **CDK_CONTEXT,
        "eventpipe.dev.fanout_threshold_bytes": "1048576",
        "eventpipe.dev.fanout_max_concurrency": "10",
        "eventpipe.dev.writers": "8",
    }

    small = synth(context, tmp_path)

    ingest = small.props(small.output_ref("IngestFunctionName"))["Environment"]["Variables"]
    assert mapping(small)["ScalingConfig"] == {"MaximumConcurrency": 10}
    assert (ingest["FANOUT_THRESHOLD_BYTES"], ingest["WRITERS"]) == ("1048576", "8")
    assert worker(small)["Environment"]["Variables"]["WRITERS"] == "8"


def test_a_stack_whose_consumers_never_fan_out_has_no_range_worker(tmp_path: Path) -> None:
    no_fanout: tuple[Consumer, ...] = tuple(
        c for c in CONSUMERS if not (isinstance(c.target, LambdaTarget) and c.target.starts_fanout)
    )

    plain = synth(dict(CDK_CONTEXT), tmp_path, no_fanout)

    assert not [key for key in plain.outputs if key.startswith("RangeWorker")]
    assert plain.of_type("AWS::Lambda::EventSourceMapping") == {}


def test_rejects_parts_a_taken_over_fan_out_left_expire_after_the_dlq_retention(dev: Synthesized) -> None:
    rejects = dev.props(dev.output_ref("RejectsBucketName"))
    rules = {rule["Id"]: rule for rule in rejects["LifecycleConfiguration"]["Rules"]}

    parts = rules["expire-abandoned-fanout-parts"]
    assert (parts["Prefix"], parts["Status"]) == (PARTS_PREFIX, "Enabled")
    assert parts["ExpirationInDays"] * 86400 > FOURTEEN_DAYS  # a dead task may still be redriven
