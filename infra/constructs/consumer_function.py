"""The Lambda function of a Lambda consumer, with everything a reliable async consumer needs.

EventBridge invokes Lambda asynchronously: the rule's DLQ only sees events that could not be handed
to Lambda. Errors raised inside the function go through Lambda's own retries and then the on-failure
queue built here, so a function error is never lost and never reaches the rule DLQ.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from eventpipe.contract.consumers import Consumer, LambdaTarget
from functions.core.wiring import env
from infra.config import StageConfig
from infra.constructs.alarms import describe, function_failure_alarms, queue_depth_alarm
from infra.constructs.functions_package import ARCHITECTURE, RUNTIME, FunctionsPackage
from infra.constructs.log_groups import log_group
from infra.constructs.records_table import RecordsTable
from infra.constructs.secure_queue import secure_queue
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


class ConsumerFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        consumer: Consumer,
        target: LambdaTarget,
        config: StageConfig,
        package: FunctionsPackage,
        ingest_bucket: s3.IBucket,
        rejects_bucket: s3.IBucket,
        records: RecordsTable,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._ingest_bucket = ingest_bucket
        self._rejects_bucket = rejects_bucket
        self._records = records
        logs = log_group(self, "Logs", retention_days=config.log_retention_days, retain=config.retain_data)
        # Our own role: the default one carries the AWSLambdaBasicExecutionRole managed policy
        # (logs on every log group of the account).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"eventpipe consumer {consumer.name}",
        )
        logs.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=consumer.description or f"eventpipe consumer {consumer.name}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=consumer.handler,
            code=package.code,
            layers=[package.layer],
            memory_size=config.memory_mb(consumer),
            timeout=Duration.seconds(target.timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            role=self.role,
            log_group=logs,
            environment={
                env.TABLE_NAME: records.table.table_name,
                env.REJECTS_BUCKET: rejects_bucket.bucket_name,
                env.MAX_JSON_ARRAY_BYTES: str(config.max_json_array_bytes),
                env.POWERTOOLS_SERVICE_NAME: consumer.name,
                env.POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
                env.POWERTOOLS_LOG_LEVEL: config.log_level,
                # Active tracing alone (the Lambda service segment per invocation); the Powertools Tracer's
                # X-Ray SDK would add subsegments per AWS call at a cold-start cost (README, Performance).
                env.POWERTOOLS_TRACE_DISABLED: "true",
            },
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "CDK-generated for active tracing: xray:PutTraceSegments / PutTelemetryRecords support no "
            "resource-level permissions.",
        )
        self.failure_queue: sqs.Queue = secure_queue(
            self,
            "FailureQueue",
            purpose=f"the on-failure destination of the {consumer.name} function",
            retain=config.retain_data,
        )
        subject = f"consumer {consumer.name} (function)"
        queue_depth_alarm(
            self,
            "FailureQueueAlarm",
            queue=self.failure_queue,
            topic=alarm_topic,
            description=describe(
                subject,
                "events failed inside the function after Lambda's retries (or grew too old); their "
                "records wait in the failure queue. Fix the code or its input, deploy, then redrive.",
                "4-redriving-to-the-failed-consumer-only",
            ),
        )
        function_failure_alarms(self, function=self.function, topic=alarm_topic, subject=subject)
        self.function.configure_async_invoke(
            retry_attempts=config.lambda_retry_attempts,
            max_event_age=Duration.seconds(config.lambda_max_event_age_seconds),
            on_failure=destinations.SqsDestination(self.failure_queue),
        )
        for statement in self._permissions(target):
            self.role.add_to_policy(statement)

    def _permissions(self, target: LambdaTarget) -> list[iam.PolicyStatement]:
        """The statements the entry's permission flags declare, nothing more."""
        statements: list[iam.PolicyStatement] = []
        table_arn = self._records.table.table_arn
        if target.reads_ingest_bucket:
            bucket = self._ingest_bucket
            statements.append(_allow(BUCKET_READ_ACTIONS, bucket.arn_for_objects("*")))
            # ListBucket turns a vanished object into a 404 (deterministic: skip) instead of a 403.
            statements.append(_allow(("s3:ListBucket",), bucket.bucket_arn))
            self._acknowledge_objects(bucket, "reads any uploaded object: keys are not known in advance")
        if target.writes_rejects:
            bucket = self._rejects_bucket
            statements.append(_allow(REJECTS_WRITE_ACTIONS, bucket.arn_for_objects("*")))
            self._acknowledge_objects(bucket, "writes (and clears) one rejects report per object key")
        if target.reads_table:
            statements.append(_allow(TABLE_READ_ACTIONS, table_arn, self._records.owner_index_arn))
        if target.writes_table:
            statements.append(_allow(TABLE_WRITE_ACTIONS, table_arn))
        return statements

    def _acknowledge_objects(self, bucket: s3.IBucket, why: str) -> None:
        cfn_bucket = bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        logical_id = Stack.of(cfn_bucket).get_logical_id(cfn_bucket)
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/*]",
            f"Object-level access inside one project bucket: the function {why}.",
        )


def _allow(actions: tuple[str, ...], *resources: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=list(actions), resources=list(resources))
