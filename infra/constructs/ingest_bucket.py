"""The bucket users upload to; S3 publishes its events to the default EventBridge bus."""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.secure_bucket import secure_bucket


class IngestBucket(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        access_logs: s3.IBucket,
        log_prefix: str,
        noncurrent_version_expiration_days: int,
        retain_data: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = secure_bucket(
            self,
            "Bucket",
            access_logs=access_logs,
            log_prefix=log_prefix,
            noncurrent_version_expiration_days=noncurrent_version_expiration_days,
            retain_data=retain_data,
        )
        # The native CloudFormation property instead of `event_bridge_enabled=True`, which adds a
        # Custom::S3BucketNotifications resource (a hidden Lambda and role).
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
