"""The one way this project creates data buckets: private, TLS-only, encrypted, versioned, logged."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


def removal_policy(*, retain_data: bool) -> RemovalPolicy:
    # Dev stacks are destroyed after `eventpipe empty-buckets`; no auto-delete custom resource.
    return RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_logs: s3.IBucket,
    log_prefix: str,
    noncurrent_version_expiration_days: int,
    retain_data: bool,
) -> s3.Bucket:
    return s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        encryption=s3.BucketEncryption.S3_MANAGED,
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-noncurrent-versions",
                noncurrent_version_expiration=Duration.days(noncurrent_version_expiration_days),
                expired_object_delete_marker=True,
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ],
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=log_prefix,
        removal_policy=removal_policy(retain_data=retain_data),
    )
