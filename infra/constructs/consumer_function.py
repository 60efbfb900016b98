"""The Lambda function of a Lambda consumer, with everything a reliable async consumer needs.

EventBridge invokes Lambda asynchronously: the rule's DLQ only sees events that could not be handed
to Lambda. Errors raised inside the function go through Lambda's own retries and then the on-failure
queue built here, so a function error is never lost and never reaches the rule DLQ.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from eventpipe.contract.consumers import Consumer, LambdaTarget
from functions.core.wiring import env
from infra.config import StageConfig
from infra.constructs.alarms import describe, function_failure_alarms, queue_depth_alarm
from infra.constructs.functions_package import FunctionsPackage
from infra.constructs.project_function import DataResources, grant_target_permissions, project_function
from infra.constructs.secure_queue import secure_queue

# What splitting an object into range tasks takes: the queue is SQS-managed SSE, so no KMS permission.
FANOUT_SEND_ACTIONS = ("sqs:SendMessage",)


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
        data: DataResources,
        alarm_topic: sns.ITopic,
        fanout_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        environment: dict[str, str] = {env.MAX_JSON_ARRAY_BYTES: str(config.max_json_array_bytes)}
        if target.writes_table:
            environment[env.WRITERS] = str(config.writers)
        if target.starts_fanout:
            if fanout_queue is None:
                raise ValueError(
                    f"consumer {consumer.name!r} starts fan-outs but the stack has no work queue"
                )
            environment[env.FANOUT_QUEUE_URL] = fanout_queue.queue_url
            environment[env.FANOUT_THRESHOLD_BYTES] = str(config.fanout_threshold_bytes)
        built = project_function(
            self,
            service=consumer.name,
            description=consumer.description or f"eventpipe consumer {consumer.name}",
            role_description=f"eventpipe consumer {consumer.name}",
            handler=consumer.handler,
            config=config,
            package=package,
            memory_mb=config.memory_mb(consumer),
            timeout=Duration.seconds(target.timeout_seconds),
            data=data,
            environment=environment,
        )
        self.role = built.role
        self.function = built.function
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
        grant_target_permissions(built, target, data)
        if fanout_queue is not None and target.starts_fanout:
            # SendMessage also authorizes SendMessageBatch (SQS developer guide, "Amazon SQS batch actions").
            built.allow(FANOUT_SEND_ACTIONS, fanout_queue.queue_arn)
