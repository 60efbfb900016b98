"""What every Lambda function of the project gets, whoever invokes it: its own role and log group, the
shared runtime, architecture, code asset and layer, active tracing, Powertools settings, and the
IAM statements of the registry's permission flags (`LambdaTarget`).

Consumer functions (`consumer_function.py`, invoked by EventBridge) and the range worker
(`range_worker.py`, invoked by an SQS event source mapping) are both built here, so they cannot drift.
The children are created directly in the caller's scope (ids `Logs`, `Role`, `Function`), which keeps
the logical ids of already deployed functions unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from eventpipe.contract.consumers import LambdaTarget
from functions.core.wiring import env
from infra.config import StageConfig
from infra.constructs.functions_package import ARCHITECTURE, RUNTIME, FunctionsPackage
from infra.constructs.log_groups import log_group
from infra.constructs.records_table import RecordsTable
from infra.nag import acknowledge

METRICS_NAMESPACE = "eventpipe"

# Each permission flag of a LambdaTarget maps to these fixed actions (no wildcard action anywhere).
BUCKET_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
# A reprocessed object that no longer has rejects deletes its stale report.
REJECTS_WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject")
TABLE_READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
TABLE_WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)


@dataclass(frozen=True)
class DataResources:
    """The project's data stores a function may be granted access to."""

    ingest_bucket: s3.IBucket
    rejects_bucket: s3.IBucket
    records: RecordsTable


@dataclass(frozen=True)
class ProjectFunction:
    function: lambda_.Function
    role: iam.Role

    def allow(self, actions: tuple[str, ...], *resources: str) -> None:
        self.role.add_to_policy(allow(actions, *resources))


def project_function(
    scope: Construct,
    *,
    service: str,
    description: str,
    role_description: str,
    handler: str,
    config: StageConfig,
    package: FunctionsPackage,
    memory_mb: int,
    timeout: Duration,
    data: DataResources,
    environment: Mapping[str, str] | None = None,
) -> ProjectFunction:
    """The function, named `service` in its logs and metrics, with the table and rejects bucket in its
    environment plus `environment`."""
    logs = log_group(scope, "Logs", retention_days=config.log_retention_days, retain=config.retain_data)
    # Our own role: the default one carries the AWSLambdaBasicExecutionRole managed policy
    # (logs on every log group of the account).
    role = iam.Role(
        scope, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=role_description
    )
    logs.grant_write(role)
    function = lambda_.Function(
        scope,
        "Function",
        description=description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=package.code,
        layers=[package.layer],
        memory_size=memory_mb,
        timeout=timeout,
        tracing=lambda_.Tracing.ACTIVE,
        role=role,
        log_group=logs,
        environment={
            env.TABLE_NAME: data.records.table.table_name,
            env.REJECTS_BUCKET: data.rejects_bucket.bucket_name,
            **(environment or {}),
            env.POWERTOOLS_SERVICE_NAME: service,
            env.POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
            env.POWERTOOLS_LOG_LEVEL: config.log_level,
            # Active tracing alone (the Lambda service segment per invocation); the Powertools Tracer's
            # X-Ray SDK would add subsegments per AWS call at a cold-start cost (README, Performance).
            env.POWERTOOLS_TRACE_DISABLED: "true",
        },
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "CDK-generated for active tracing: xray:PutTraceSegments / PutTelemetryRecords support no "
        "resource-level permissions.",
    )
    return ProjectFunction(function, role)


def grant_target_permissions(built: ProjectFunction, target: LambdaTarget, data: DataResources) -> None:
    """The statements the entry's permission flags declare, nothing more (`starts_fanout` is granted
    by the range worker, which owns the queue)."""
    table_arn = data.records.table.table_arn
    if target.reads_ingest_bucket:
        bucket = data.ingest_bucket
        built.allow(BUCKET_READ_ACTIONS, bucket.arn_for_objects("*"))
        # ListBucket turns a vanished object into a 404 (deterministic: skip) instead of a 403.
        built.allow(("s3:ListBucket",), bucket.bucket_arn)
        acknowledge_objects(built.role, bucket, "reads any uploaded object: keys are not known in advance")
    if target.writes_rejects:
        bucket = data.rejects_bucket
        built.allow(REJECTS_WRITE_ACTIONS, bucket.arn_for_objects("*"))
        acknowledge_objects(built.role, bucket, "writes (and clears) one rejects report per object key")
    if target.reads_table:
        built.allow(TABLE_READ_ACTIONS, table_arn, data.records.owner_index_arn)
    if target.writes_table:
        built.allow(TABLE_WRITE_ACTIONS, table_arn)


def acknowledge_objects(role: iam.Role, bucket: s3.IBucket, why: str) -> None:
    cfn_bucket = bucket.node.default_child
    assert isinstance(cfn_bucket, s3.CfnBucket)
    logical_id = Stack.of(cfn_bucket).get_logical_id(cfn_bucket)
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/*]",
        f"Object-level access inside one project bucket: the function {why}.",
    )


def allow(actions: tuple[str, ...], *resources: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=list(actions), resources=list(resources))
