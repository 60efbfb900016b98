"""Emptying the stack's versioned buckets before `cdk destroy` (CloudFormation cannot delete a
non-empty bucket, and the project avoids the auto-delete custom resource)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from eventpipe.errors import EventpipeError
from eventpipe.ops.context import OpsContext

_DELETE_BATCH = 1000  # DeleteObjects maximum


def stack_buckets(ctx: OpsContext) -> list[str]:
    """Every AWS::S3::Bucket of the stack (not only those in outputs, e.g. access-log buckets)."""
    names: list[str] = []
    try:
        paginator = ctx.client("cloudformation").get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=ctx.stack):
            names.extend(
                resource["PhysicalResourceId"]
                for resource in page.get("StackResourceSummaries", [])
                if resource.get("ResourceType") == "AWS::S3::Bucket" and resource.get("PhysicalResourceId")
            )
    except ClientError:
        if not ctx.local:
            raise
        # Local mode may have been deployed without CloudFormation bookkeeping: fall back to the outputs.
    for key in ("BucketName", "RejectsBucketName"):
        if ctx.outputs.get(key) and ctx.outputs[key] not in names:
            names.append(ctx.outputs[key])
    return names


@dataclass
class EmptiedBucket:
    bucket: str
    deleted: int = 0
    missing: bool = False
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "deleted": self.deleted,
            "missing": self.missing,
            "errors": self.errors,
        }


def empty_bucket(s3: Any, bucket: str, *, on_deleted: Callable[[int], None] | None = None) -> EmptiedBucket:
    """Delete every object version and delete marker; a bucket that no longer exists is not an error."""
    result = EmptiedBucket(bucket)
    paginator = s3.get_paginator("list_object_versions")
    try:
        for page in paginator.paginate(Bucket=bucket):
            entries = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in (*page.get("Versions", []), *page.get("DeleteMarkers", []))
            ]
            for start in range(0, len(entries), _DELETE_BATCH):
                batch = entries[start : start + _DELETE_BATCH]
                response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                errors = response.get("Errors", [])
                result.errors.extend(f"{e.get('Key')}: {e.get('Code')}: {e.get('Message')}" for e in errors)
                result.deleted += len(batch) - len(errors)
                if on_deleted:
                    on_deleted(len(batch) - len(errors))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            result.missing = True
            return result
        raise
    return result


def empty_stack_buckets(
    ctx: OpsContext, *, on_deleted: Callable[[str, int], None] | None = None
) -> list[EmptiedBucket]:
    s3 = ctx.client("s3")
    results = []
    for bucket in stack_buckets(ctx):
        progress = (lambda n, b=bucket: on_deleted(b, n)) if on_deleted else None
        results.append(empty_bucket(s3, bucket, on_deleted=progress))
    failed = [r for r in results if r.errors]
    if failed:
        first = failed[0]
        raise EventpipeError(
            f"could not delete {len(first.errors)} versions in {first.bucket}: {first.errors[0]}"
        )
    return results
