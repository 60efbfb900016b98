"""How `eventpipe reconcile` classifies one object's drift from what the bucket and the table hold."""

from __future__ import annotations

from typing import Any

import pytest

from eventpipe.ops.reconcile import Current, Items, classify

NOW = 1_000_000.0
V2 = Current(version_id="v2", etag="e2")


def state(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"status": "present", "version_id": "v2", "etag": "e2", "record_count": 3}
    return {**base, **fields}


def kinds(current: Current | None, item: dict[str, Any] | None, items: Items) -> set[str]:
    return {drift.kind for drift in classify(current, item, items, now=NOW)}


def test_a_mirrored_object_has_no_drift() -> None:
    assert kinds(V2, state(), Items(count=3)) == set()


def test_a_clean_tombstone_of_an_absent_object_has_no_drift() -> None:
    assert kinds(None, state(status="deleted", record_count=0), Items()) == set()


def test_an_absent_object_never_seen_by_the_table_has_no_drift() -> None:
    assert kinds(None, None, Items()) == set()


@pytest.mark.parametrize(
    ("current", "item", "items", "expected"),
    [
        (V2, None, Items(), {"missing_state"}),
        (V2, None, Items(count=2), {"missing_state", "count_mismatch"}),
        (V2, state(status="deleted"), Items(), {"not_mirrored"}),
        (V2, state(version_id="v1"), Items(count=3), {"stale_version"}),
        (V2, state(), Items(count=3, other_version=1), {"stale_records"}),
        (V2, state(), Items(count=2), {"count_mismatch"}),
        (None, state(status="deleted"), Items(count=1), {"records_for_absent_object"}),
        (None, state(), Items(count=3), {"records_for_absent_object", "state_for_absent_object"}),
        (V2, state(dirty=True), Items(count=3), {"dirty"}),
        (V2, state(dirty=True, lease_token="e/r", lease_expires=NOW - 1), Items(count=3), {"lease_overdue"}),
    ],
)
def test_each_drift_is_named(current: Current | None, item: Any, items: Items, expected: set[str]) -> None:
    assert kinds(current, item, items) == expected


def test_an_object_being_processed_under_a_live_lease_is_not_drift() -> None:
    busy = state(dirty=True, lease_token="e/r", lease_expires=NOW + 60)
    assert kinds(V2, busy, Items(count=3)) == set()


def test_unversioned_buckets_compare_etags() -> None:
    unversioned = Current(version_id="null", etag="e2")
    assert kinds(unversioned, state(version_id=None), Items(count=3)) == set()
    assert kinds(unversioned, state(version_id=None, etag="e1"), Items(count=3)) == {"stale_version"}
