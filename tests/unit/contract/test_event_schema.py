"""The S3-via-EventBridge event schema: the fixtures conform, and moto's wrong shapes are rejected."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eventpipe.contract.event_schema import InvalidS3EventError, load_s3_event_validator

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


def _s3_fixtures() -> list[Path]:
    """Every fixture that claims to be an S3 event (other fixtures, e.g. DLQ messages, are not)."""
    found = []
    for path in sorted(EVENTS_DIR.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and document.get("source") == "aws.s3":
            found.append(path)
    return found


# The AWS S3 user guide's own examples ("EventBridge event message structure"), trimmed to what differs.
DOC_OBJECT_CREATED: dict[str, Any] = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2021-11-12T00:00:00Z",
    "region": "ca-central-1",
    "resources": ["arn:aws:s3:::amzn-s3-demo-bucket1"],
    "detail": {
        "version": "0",
        "bucket": {"name": "amzn-s3-demo-bucket1"},
        "object": {
            "key": "example-key",
            "size": 5,
            "etag": "b1946ac92492d2347c6235b4d2611184",
            "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
            "sequencer": "617f08299329d189",
        },
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "PutObject",
    },
}

DOC_OBJECT_DELETED_BY_LIFECYCLE: dict[str, Any] = {
    **DOC_OBJECT_CREATED,
    "id": "ad1de317-e409-eba2-9552-30113f8d88e3",
    "detail-type": "Object Deleted",
    "detail": {
        "version": "0",
        "bucket": {"name": "amzn-s3-demo-bucket1"},
        "object": {
            "key": "example-key",
            "etag": "d41d8cd98f00b204e9800998ecf8427e",
            "version-id": "mtB0cV.jejK63XkRNceanNMC.qXPWLeK",
            "sequencer": "617b398000000000",
        },
        "request-id": "20EB74C14654DC47",
        "requester": "s3.amazonaws.com",
        "reason": "Lifecycle Expiration",
        "deletion-type": "Delete Marker Created",
    },
}


@pytest.fixture(scope="module")
def validate() -> Callable[[Any], Any]:
    return load_s3_event_validator()


@pytest.mark.parametrize("fixture", _s3_fixtures(), ids=lambda path: path.name)
def test_every_s3_event_fixture_is_aws_shaped(fixture: Path, validate: Callable[[Any], Any]) -> None:
    validate(json.loads(fixture.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    "event",
    [
        DOC_OBJECT_CREATED,
        DOC_OBJECT_DELETED_BY_LIFECYCLE,
        {**DOC_OBJECT_CREATED, "replay-name": "replay-2021-11-12"},
    ],
    ids=["created", "deleted-by-lifecycle", "replayed"],
)
def test_aws_documentation_examples_are_accepted(
    event: dict[str, Any], validate: Callable[[Any], Any]
) -> None:
    validate(event)


def _unversioned_multipart(event: dict[str, Any]) -> None:
    event["detail"]["object"].pop("version-id")
    event["detail"]["object"]["etag"] = "b1946ac92492d2347c6235b4d2611184-12"
    event["detail"]["reason"] = "CompleteMultipartUpload"
    event["detail"]["object"]["key"] = "dir/my+report+%C3%A9.json"


def test_unversioned_multipart_upload_with_encoded_key_is_accepted(validate: Callable[[Any], Any]) -> None:
    event = copy.deepcopy(DOC_OBJECT_CREATED)
    _unversioned_multipart(event)
    validate(event)


def _rename_etag(event: dict[str, Any]) -> None:
    event["detail"]["object"]["eTag"] = event["detail"]["object"].pop("etag")


def _reason(value: str) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        event["detail"]["reason"] = value

    return mutate


def _drop_object_field(name: str) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        event["detail"]["object"].pop(name)

    return mutate


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


# (case id, what moto or a careless fixture does, the schema's complaint)
WRONG_SHAPES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("moto eTag instead of etag", _rename_etag, "etag"),
    ("moto reason ObjectCreated", _reason("ObjectCreated"), "reason"),
    ("missing sequencer", _drop_object_field("sequencer"), "sequencer"),
    ("missing size on Object Created", _drop_object_field("size"), "size"),
    ("sequencer not hex", _set(("detail", "object", "sequencer"), "not-hex"), "sequencer"),
    ("raw key with a space (not URL-encoded)", _set(("detail", "object", "key"), "my file.json"), "key"),
    ("raw non-ASCII key", _set(("detail", "object", "key"), "café.json"), "key"),
    ("delete reason on Object Created", _reason("DeleteObject"), "reason"),
    ("deletion-type on Object Created", _set(("detail", "deletion-type"), "Permanently Deleted"), "detail"),
    ("id not a UUID", _set(("id",), "abc"), "id"),
    ("unconsumed detail type", _set(("detail-type",), "Object Restore Completed"), "detail-type"),
    ("other source", _set(("source",), "aws.ec2"), "source"),
    ("quoted etag", _set(("detail", "object", "etag"), '"b1946ac92492d2347c6235b4d2611184"'), "etag"),
    ("forwarding dropped resources (moto gap 7)", lambda e: e.pop("resources"), "resources"),
]


@pytest.mark.parametrize(
    ("mutate", "complaint"), [c[1:] for c in WRONG_SHAPES], ids=[c[0] for c in WRONG_SHAPES]
)
def test_wrong_shapes_are_rejected(
    mutate: Callable[[dict[str, Any]], None], complaint: str, validate: Callable[[Any], Any]
) -> None:
    event = copy.deepcopy(DOC_OBJECT_CREATED)
    mutate(event)
    with pytest.raises(InvalidS3EventError) as caught:
        validate(event)
    assert complaint in str(caught.value)


def test_object_deleted_needs_deletion_type_and_a_delete_reason(validate: Callable[[Any], Any]) -> None:
    missing_type = copy.deepcopy(DOC_OBJECT_DELETED_BY_LIFECYCLE)
    missing_type["detail"].pop("deletion-type")
    created_reason = copy.deepcopy(DOC_OBJECT_DELETED_BY_LIFECYCLE)
    created_reason["detail"]["reason"] = "PutObject"
    for event in (missing_type, created_reason):
        with pytest.raises(InvalidS3EventError):
            validate(event)


def test_moto_shaped_event_is_rejected(validate: Callable[[Any], Any]) -> None:
    """What moto 5.2.5 emits for a PutObject (aws-facts gap 1) must not pass for an AWS event."""
    moto_event = copy.deepcopy(DOC_OBJECT_CREATED)
    moto_event["detail"]["object"] = {
        "key": "my file.json",
        "size": 5,
        "eTag": "b1946ac92492d2347c6235b4d2611184",
    }
    moto_event["detail"]["reason"] = "ObjectCreated"
    with pytest.raises(InvalidS3EventError):
        validate(moto_event)
