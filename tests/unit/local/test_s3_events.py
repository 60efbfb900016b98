"""Local S3 -> EventBridge events have AWS's shape (S3 user guide, EventBridge message structure)."""

from __future__ import annotations

import uuid

from eventpipe.contract.event_schema import load_s3_event_validator
from eventpipe.local.s3_events import ObjectChange, build_event, next_sequencer


def build(change: ObjectChange) -> dict:
    return build_event(change, account="123456789012", region="us-east-1")


def test_created_event_shape_validates_against_the_project_schema() -> None:
    event = build(
        ObjectChange(
            bucket="my-bucket",
            key="in/a b+c.json",
            reason="PutObject",
            size=3,
            etag='"0123456789abcdef0123456789abcdef"',
            version_id="v1",
        )
    )

    load_s3_event_validator()(event)
    assert event["detail"]["object"] == {
        "key": "in/a+b%2Bc.json",
        "size": 3,
        "etag": "0123456789abcdef0123456789abcdef",
        "version-id": "v1",
        "sequencer": event["detail"]["object"]["sequencer"],
    }
    assert event["resources"] == ["arn:aws:s3:::my-bucket"]
    assert uuid.UUID(event["id"])


def test_deleted_event_has_deletion_type_and_no_size_or_etag() -> None:
    event = build(
        ObjectChange(
            bucket="my-bucket",
            key="k",
            reason="DeleteObject",
            deletion_type="Delete Marker Created",
            version_id="m1",
        )
    )

    load_s3_event_validator()(event)
    assert event["detail-type"] == "Object Deleted"
    assert event["detail"]["deletion-type"] == "Delete Marker Created"
    assert set(event["detail"]["object"]) == {"key", "version-id", "sequencer"}


def test_unversioned_objects_have_no_version_id_and_ids_are_unique() -> None:
    first = build(ObjectChange(bucket="my-bucket", key="k", reason="PutObject", size=1, etag="a" * 32))
    second = build(ObjectChange(bucket="my-bucket", key="k", reason="PutObject", size=1, etag="a" * 32))

    assert "version-id" not in first["detail"]["object"]
    assert first["id"] != second["id"]


def test_sequencers_are_fixed_width_hex_and_increase() -> None:
    values = [next_sequencer() for _ in range(100)]

    assert len({len(v) for v in values}) == 1
    assert values == sorted(values)
    assert len(set(values)) == 100
    assert all(int(v, 16) >= 0 for v in values)
