"""The one way this project creates SQS queues: SQS-managed encryption and a TLS-only policy.

SQS-managed SSE (not a customer KMS key) because EventBridge can only deliver to a KMS-encrypted
dead-letter queue if it may use the key; a forgotten key grant silently loses dead letters.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge

MAX_RETENTION = Duration.days(14)  # the SQS maximum: time for an operator to react to dead letters
END_OF_FAILURE_PATH = "it ends a failure path; a DLQ behind it would only move dead letters again"


def secure_queue(
    scope: Construct,
    construct_id: str,
    *,
    purpose: str,
    no_dlq_reason: str = END_OF_FAILURE_PATH,
    retention: Duration = MAX_RETENTION,
    retain: bool = False,
    dead_letter_queue: sqs.DeadLetterQueue | None = None,
    visibility_timeout: Duration | None = None,
) -> sqs.Queue:
    """An encrypted TLS-only queue. Without `dead_letter_queue`, `purpose` and `no_dlq_reason` explain
    (to cdk-nag's SQS3 and to readers) why the queue has no redrive DLQ of its own. `retain=True`
    (dead-letter and failure queues of a stage that retains data) keeps the queue and its messages,
    the evidence of what failed, when CloudFormation replaces it or deletes the stack."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention,
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        dead_letter_queue=dead_letter_queue,
        visibility_timeout=visibility_timeout,
    )
    if dead_letter_queue is None:
        acknowledge(queue, "AwsSolutions-SQS3", f"This queue is {purpose}: {no_dlq_reason}.")
    return queue
