"""Rejects reports live in their own bucket: no bucket notification, so a report never triggers ingest."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.core.domain.range_task import PARTS_PREFIX
from infra.constructs.secure_bucket import secure_bucket

# A fan-out's per-range rejects are deleted by its commit; a fan-out taken over by a newer event leaves
# them behind. They must outlive a task waiting in the range work DLQ (14 days) to be redriven.
ABANDONED_PARTS_DAYS = 15


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
        self.bucket.add_lifecycle_rule(
            id="expire-abandoned-fanout-parts",
            prefix=PARTS_PREFIX,
            expiration=Duration.days(ABANDONED_PARTS_DAYS),
        )
