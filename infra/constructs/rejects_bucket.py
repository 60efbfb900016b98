"""Rejects reports live in their own bucket: no bucket notification, so a report never triggers ingest."""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.secure_bucket import secure_bucket


class RejectsBucket(Construct):
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
