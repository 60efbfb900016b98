"""The fan-out of large objects: the range work queue, its dead-letter queue, and the range worker.

Ingest splits an object above `fanout_threshold_bytes` into byte ranges and sends one task per range
to the work queue; an SQS event source mapping hands each task to the range worker (one per
invocation, at most `fanout_max_concurrency` at once). A task that fails is received again after the
visibility timeout; after MAX_RECEIVE_COUNT receives SQS moves it to the DLQ, where `eventpipe dlq`
lists it and `eventpipe dlq redrive --consumer range-worker` sends it back to the work queue.

Why the queue's DLQ and not an on-failure destination: Lambda's event source mappings offer on-failure
destinations for Kinesis, DynamoDB streams, Amazon MSK and self-managed Kafka only (CloudFormation
template reference, "AWS::Lambda::EventSourceMapping OnFailure"); for an SQS source the failure path
is the queue's own redrive policy (SQS developer guide, "Configuring an Amazon SQS queue to trigger an
AWS Lambda function": "Specify a dead-letter queue to capture messages that the Lambda function fails
to process").
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from eventpipe.contract import outputs
from eventpipe.contract.consumers import INGEST_WRITE_PATH
from functions.core.wiring import env
from infra.config import StageConfig
from infra.constructs.alarms import (
    FUNCTION_ERRORS,
    FUNCTION_THROTTLES,
    POLLED_FUNCTION_FAILURE_METRICS,
    describe,
    function_failure_alarms,
    queue_depth_alarm,
)
from infra.constructs.functions_package import FunctionsPackage
from infra.constructs.project_function import (
    DataResources,
    grant_target_permissions,
    project_function,
)
from infra.constructs.secure_queue import MAX_RETENTION, secure_queue

NAME = "range-worker"
HANDLER = "functions.range_worker.handler.lambda_handler"
# A range is never split further, so it must finish inside one invocation: the Lambda maximum, with
# `fanout_threshold_bytes` capped (infra/config.py) so that one range fits in it.
TIMEOUT = Duration.minutes(15)
# Lambda developer guide, "Creating and configuring an Amazon SQS event source mapping": "set the source
# queue's visibility timeout to at least six times the configuration timeout on your function" (time
# for Lambda to retry a batch throttled behind a previous one).
VISIBILITY_TIMEOUT = Duration.seconds(6 * TIMEOUT.to_seconds())
MAX_RECEIVE_COUNT = 3
BATCH_SIZE = 1  # one range per invocation: a range already takes minutes
# A standard queue's message keeps its original enqueue time in the DLQ, so the DLQ must retain longer
# than the work queue (SQS developer guide, "Setting-up dead-letter queue retention in Amazon SQS"):
# a dead task then waits at least 10 days for an operator. A task waits minutes, not days, when healthy.
WORK_RETENTION = Duration.days(4)
RUNBOOK_SECTION = "8-fan-out-the-range-worker"

RANGE_WORKER_EXPLANATIONS = {
    FUNCTION_ERRORS.key: (
        "a range task failed (exception, timeout, out of memory). SQS hands it to the worker again after "
        "the visibility timeout; after 3 receives it lands in the range work DLQ and the object stays "
        "dirty until it is redriven. Read the worker's logs for the cause.",
        RUNBOOK_SECTION,
    ),
    FUNCTION_THROTTLES.key: (
        "range tasks were throttled (account concurrency exhausted): each throttle counts as a receive, "
        "so tasks may reach the range work DLQ. Raise account concurrency or lower fanout_max_concurrency.",
        RUNBOOK_SECTION,
    ),
}


class RangeWorker(Construct):
    """`queue` is what ingest sends tasks to; `outputs` maps the contract's output keys to values."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        package: FunctionsPackage,
        data: DataResources,
        alarm_topic: sns.ITopic,
        memory_mb: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = secure_queue(
            self,
            "DeadLetterQueue",
            purpose="the dead-letter queue of the range work queue",
            retention=MAX_RETENTION,
            retain=config.retain_data,
        )
        self.queue = secure_queue(
            self,
            "WorkQueue",
            purpose="the range work queue",
            retention=WORK_RETENTION,
            visibility_timeout=VISIBILITY_TIMEOUT,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letter_queue
            ),
        )
        built = project_function(
            self,
            service=NAME,
            description="eventpipe range worker: ingests one byte range of a fanned-out object",
            role_description="eventpipe range worker",
            handler=HANDLER,
            config=config,
            package=package,
            memory_mb=memory_mb,
            timeout=TIMEOUT,
            data=data,
            environment={
                env.WRITERS: str(config.writers),
                # An ingest resumed by a continuation task (fan_out.continue_elsewhere) that runs out of
                # time again hands over once more, to this same queue.
                env.FANOUT_QUEUE_URL: self.queue.queue_url,
            },
        )
        self.function = built.function
        self.role = built.role
        # Ingest's write path, plus reading the per-range rejects parts the finalizer merges into one
        # report (RangeTask.part_key); ListBucket makes a missing part a 404 (NoSuchKey, which the
        # finalizer reports as lost rejects) instead of a 403 that would fail the task on every attempt.
        grant_target_permissions(built, INGEST_WRITE_PATH, data)
        built.allow(("s3:GetObject",), data.rejects_bucket.arn_for_objects("*"))
        built.allow(("s3:ListBucket",), data.rejects_bucket.bucket_arn)
        # SendMessage also authorizes SendMessageBatch (SQS developer guide, "Amazon SQS batch actions").
        built.allow(("sqs:SendMessage",), self.queue.queue_arn)
        # Grants the role ReceiveMessage, ChangeMessageVisibility, GetQueueUrl, DeleteMessage and
        # GetQueueAttributes on this queue only.
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=config.fanout_max_concurrency,
            )
        )
        subject = "range worker"
        queue_depth_alarm(
            self,
            "DeadLetterQueueAlarm",
            queue=self.dead_letter_queue,
            topic=alarm_topic,
            description=describe(
                subject,
                "range tasks failed 3 times and wait in the range work DLQ; their objects stay dirty "
                "(not committed) until the tasks are redriven. Fix the cause, deploy, then redrive.",
                RUNBOOK_SECTION,
            ),
        )
        function_failure_alarms(
            self,
            function=self.function,
            topic=alarm_topic,
            subject=subject,
            metrics=POLLED_FUNCTION_FAILURE_METRICS,
            explanations=RANGE_WORKER_EXPLANATIONS,
        )
        prefix = outputs.RANGE_WORKER_PREFIX
        self.outputs: dict[str, str] = {
            prefix + outputs.FUNCTION_NAME: self.function.function_name,
            prefix + outputs.QUEUE_URL: self.queue.queue_url,
            prefix + outputs.DLQ_URL: self.dead_letter_queue.queue_url,
        }
