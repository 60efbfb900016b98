"""empty-buckets: every version and delete marker goes, so CloudFormation can delete the bucket."""

from __future__ import annotations

from typing import Any

import pytest
from ops_fakes import BUCKET, Deployed

from eventpipe.ops.buckets import empty_bucket, stack_buckets


def versioned_bucket(s3: Any, name: str) -> None:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for key in ("a.json", "b.json", "dir/c d.json"):
        s3.put_object(Bucket=name, Key=key, Body=b"{}")
        s3.put_object(Bucket=name, Key=key, Body=b'{"v": 2}')
    s3.delete_object(Bucket=name, Key="a.json")  # a delete marker


def test_every_version_and_delete_marker_is_deleted(deployed: Deployed) -> None:
    s3 = deployed.ctx.client("s3")
    versioned_bucket(s3, BUCKET)
    reported: list[int] = []

    result = empty_bucket(s3, BUCKET, on_deleted=reported.append)

    assert result.deleted == 7 == sum(reported)
    listing = s3.list_object_versions(Bucket=BUCKET)
    assert listing.get("Versions", []) == listing.get("DeleteMarkers", []) == []
    s3.delete_bucket(Bucket=BUCKET)  # what CloudFormation does next


def test_a_bucket_that_is_already_gone_is_not_an_error(deployed: Deployed) -> None:
    result = empty_bucket(deployed.ctx.client("s3"), "eventpipe-dev-gone")

    assert result.missing
    assert result.deleted == 0


def test_buckets_come_from_the_outputs_when_the_stack_has_no_resource_list(deployed: Deployed) -> None:
    deployed.ctx.outputs["RejectsBucketName"] = "eventpipe-dev-rejects"

    with pytest.raises(Exception, match="eventpipe-dev"):
        stack_buckets(deployed.ctx)  # deployed, not local: a missing stack must not be guessed around

    deployed.ctx.local = True
    assert stack_buckets(deployed.ctx) == [BUCKET, "eventpipe-dev-rejects"]
