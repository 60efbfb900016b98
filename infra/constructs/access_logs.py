"""The server access log bucket of the data buckets (who read or wrote which object, and when)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.secure_bucket import removal_policy


class AccessLogsBucket(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, retention_days: int, retain_data: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            # S3 server access logging only delivers to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(retention_days))],
            removal_policy=removal_policy(retain_data=retain_data),
        )
