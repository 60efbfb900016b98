"""Emptying the stack's versioned buckets before `cdk destroy` (CloudFormation cannot delete a
non-empty bucket, and the project avoids the auto-delete custom resource)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from eventpipe.contract import outputs
from eventpipe.contract.errors import EventpipeError
from eventpipe.ops.context import OpsContext

_DELETE_BATCH = 1000  # DeleteObjects maximum
# Policies that keep a resource (or a copy of it) when CloudFormation deletes or replaces it: the values
# of the DeletionPolicy / UpdateReplacePolicy attributes (CloudFormation template reference,
# "DeletionPolicy attribute"; CDK `CfnDeletionPolicy`). A stack that keeps its data must not be emptied.
RETAINING_POLICIES = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})


@dataclass(frozen=True)
class Protection:
    """What says a stack's data is meant to outlive it."""

    termination_protection: bool = False
    retained: tuple[str, ...] = ()  # "<logical id> (<type>)" of every resource with a retaining policy

    @property
    def reason(self) -> str | None:
        """One line for the refusal, or None when nothing protects the stack."""
        reasons = []
        if self.termination_protection:
            reasons.append("it has termination protection")
        if self.retained:
            shown = ", ".join(self.retained[:3]) + (
                f" (+{len(self.retained) - 3} more)" if len(self.retained) > 3 else ""
            )
            reasons.append(f"it retains {len(self.retained)} resource(s) on deletion: {shown}")
        return " and ".join(reasons) or None


def retained_resources(template: Mapping[str, Any]) -> tuple[str, ...]:
    """Every resource of a template whose DeletionPolicy or UpdateReplacePolicy keeps it."""
    found = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, Mapping):
            continue
        policies = {resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")}
        if policies & RETAINING_POLICIES:
            found.append(f"{logical_id} ({resource.get('Type', '?')})")
    return tuple(found)


def stack_protection(ctx: OpsContext) -> Protection:
    """Termination protection (DescribeStacks `EnableTerminationProtection`) and retained resources (the
    deployed template from GetTemplate, `Processed` stage: what CloudFormation acts on).

    Local mode: the emulator's stack may have no CloudFormation record; nothing there outlives a stop.
    """
    cloudformation = ctx.client("cloudformation")
    try:
        stack = cloudformation.describe_stacks(StackName=ctx.stack)["Stacks"][0]
        body = cloudformation.get_template(StackName=ctx.stack, TemplateStage="Processed")["TemplateBody"]
    except ClientError:
        if ctx.local:
            return Protection()
        raise
    # botocore hands a JSON template back already parsed; a YAML one stays a string.
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            raise EventpipeError(
                f"cannot read the template of {ctx.stack} to check for retained resources (not JSON): "
                "pass --force if you are sure its data may go"
            ) from None
    return Protection(
        termination_protection=bool(stack.get("EnableTerminationProtection")),
        retained=retained_resources(body if isinstance(body, Mapping) else {}),
    )


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
    for key in (outputs.BUCKET_NAME, outputs.REJECTS_BUCKET_NAME):
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
    ctx: OpsContext,
    *,
    on_deleted: Callable[[str, int], None] | None = None,
    buckets: list[str] | None = None,
) -> list[EmptiedBucket]:
    """Empty `buckets` (default: every bucket of the stack); guards and confirmation are the caller's."""
    s3 = ctx.client("s3")
    results = []
    for bucket in stack_buckets(ctx) if buckets is None else buckets:
        progress = (lambda n, b=bucket: on_deleted(b, n)) if on_deleted else None
        results.append(empty_bucket(s3, bucket, on_deleted=progress))
    failed = [r for r in results if r.errors]
    if failed:
        first = failed[0]
        raise EventpipeError(
            f"could not delete {len(first.errors)} versions in {first.bucket}: {first.errors[0]}"
        )
    return results
