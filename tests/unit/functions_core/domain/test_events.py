"""Real-shaped S3 EventBridge events become typed ObjectEvents (keys decoded, optional fields optional)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.domain.events import InvalidEventError, ObjectEvent, normalize_sequencer

from ..conftest import load_event

CASES = [
    # fixture, decoded key, reason, version id?, deletion type, replay name
    ("s3_object_created_put_versioned.json", "sample.json", "PutObject", True, None, None),
    (
        "s3_object_created_put_unversioned.json",
        "events/2026/11/26/batch-0001.jsonl",
        "PutObject",
        False,
        None,
        None,
    ),
    (
        "s3_object_created_multipart.json",
        "exports/nightly export.jsonl.gz",
        "CompleteMultipartUpload",
        True,
        None,
        None,
    ),
    ("s3_object_created_copy.json", "people/team.jsonl", "CopyObject", True, None, None),
    ("s3_object_created_encoded_key.json", "people/new hires + = équipe.json", "PutObject", True, None, None),
    (
        "s3_object_created_replayed.json",
        "sample.json",
        "PutObject",
        True,
        None,
        "eventpipe-dev-replay-20261126T1200",
    ),
    (
        "s3_object_deleted_delete_marker.json",
        "sample.json",
        "DeleteObject",
        True,
        "Delete Marker Created",
        None,
    ),
    (
        "s3_object_deleted_unversioned.json",
        "events/2026/11/26/batch-0001.jsonl",
        "DeleteObject",
        False,
        "Permanently Deleted",
        None,
    ),
    (
        "s3_object_deleted_lifecycle_expiration.json",
        "people/team.jsonl",
        "Lifecycle Expiration",
        True,
        "Delete Marker Created",
        None,
    ),
    (
        "s3_object_deleted_lifecycle_noncurrent.json",
        "people/team.jsonl",
        "Lifecycle Expiration",
        True,
        "Permanently Deleted",
        None,
    ),
]


@pytest.mark.parametrize(
    ("fixture", "key", "reason", "versioned", "deletion_type", "replay_name"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_fixture_parses_into_an_object_event(
    fixture: str, key: str, reason: str, versioned: bool, deletion_type: str | None, replay_name: str | None
) -> None:
    raw = load_event(fixture)

    event = ObjectEvent.from_eventbridge(raw)

    assert (event.key, event.reason, event.deletion_type, event.replay_name) == (
        key,
        reason,
        deletion_type,
        replay_name,
    )
    assert (event.version_id is not None) is versioned
    assert event.event_id == raw["id"]
    assert event.owner == f"{raw['detail']['bucket']['name']}/{key}"
    assert event.is_created == (raw["detail-type"] == "Object Created")
    assert event.is_deleted == (raw["detail-type"] == "Object Deleted")
    assert event.sequencer == raw["detail"]["object"]["sequencer"].upper().ljust(64, "0")


@pytest.mark.parametrize(
    "breakage",
    [
        lambda e: e.pop("detail"),
        lambda e: e["detail"].pop("object"),
        lambda e: e["detail"]["object"].pop("sequencer"),
        lambda e: e["detail"]["object"].update(sequencer="xyz"),
        lambda e: e["detail"]["object"].update(key=""),
        lambda e: e.update(detail="not an object"),
    ],
    ids=["no detail", "no object", "no sequencer", "non-hex sequencer", "empty key", "detail not an object"],
)
def test_malformed_events_are_rejected_without_retry(breakage: Any) -> None:
    raw = load_event("s3_object_created_put_versioned.json")
    breakage(raw)

    with pytest.raises(InvalidEventError):
        ObjectEvent.from_eventbridge(raw)


@given(st.integers(min_value=1, max_value=40), st.data())
def test_sequencers_of_one_length_sort_like_the_numbers_they_encode(width: int, data: st.DataObject) -> None:
    a, b = (data.draw(st.integers(min_value=0, max_value=16**width - 1)) for _ in range(2))
    assert (normalize_sequencer(f"{a:0{width}x}") < normalize_sequencer(f"{b:0{width}X}")) == (a < b)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        # The S3 user guide (Event message structure): "The sequencers can be of different lengths. So, to
        # compare these values, first right pad the shorter value with zeros, and then do a
        # lexicographical comparison." Left-padding would order each of these pairs the other way.
        ("0055FF", "0056"),
        ("00A1", "00A10001"),
        ("0F", "1"),
    ],
)
def test_sequencers_of_different_lengths_compare_right_padded_as_aws_documents(
    earlier: str, later: str
) -> None:
    assert normalize_sequencer(earlier) < normalize_sequencer(later)
    assert normalize_sequencer(later.lower()) == normalize_sequencer(later)
