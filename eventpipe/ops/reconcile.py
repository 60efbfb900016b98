"""Prove that the records table equals the bucket, object by object, and repair what drifted.

Two streaming passes, memory bounded by one page plus a capped set of keys already checked:
1. the bucket's current objects (ListObjectVersions pages; `IsLatest` versions, delete markers mean
   absent): each object's state item (BatchGetItem) and record items are compared with it;
2. the table's state and record items of the bucket (Scan pages): an object the bucket no longer holds
   (HeadObject 404) must have no record items and no state that says present.

Repair never writes on its own: `functions.core.use_cases.repair.repair_object` takes the object's lease
with its committed sequencer (or the lowest one) and runs the shared write path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from eventpipe.contract import outputs
from eventpipe.ops.context import OpsContext
from eventpipe.ops.inspect import batch_get, datasets, plain, record_items, state_item
from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.adapters.s3_object_reader import S3ObjectReader
from functions.core.adapters.s3_report_sink import S3ReportSink
from functions.core.domain.object_state import ObjectState
from functions.core.domain.table_layout import STATE_PREFIX, STATE_SORT, state_key
from functions.core.use_cases.ports import LeasePolicy, Services
from functions.core.use_cases.repair import repair_object

_BATCH_GET = 100  # BatchGetItem maximum keys per request
_CHECKED_CAP = 100_000  # keys remembered in pass 2; beyond it a key may be checked twice (harmless)
_REPAIR_WAIT_SECONDS = 30.0  # how long a repair waits for an object another attempt is processing

# Drift kinds (snake_case, stable: scripts read them from --json).
MISSING_STATE = "missing_state"
NOT_MIRRORED = "not_mirrored"
STALE_VERSION = "stale_version"
STALE_RECORDS = "stale_records"
COUNT_MISMATCH = "count_mismatch"
RECORDS_FOR_ABSENT_OBJECT = "records_for_absent_object"
STATE_FOR_ABSENT_OBJECT = "state_for_absent_object"
DIRTY = "dirty"
LEASE_OVERDUE = "lease_overdue"


@dataclass(frozen=True, slots=True)
class Current:
    """The object's current version in the bucket."""

    version_id: str | None
    etag: str | None


@dataclass(frozen=True, slots=True)
class Items:
    """What the table holds for one object: how many record items, and how many of another version."""

    count: int = 0
    other_version: int = 0


@dataclass(frozen=True, slots=True)
class Drift:
    kind: str
    detail: str


def classify(
    current: Current | None, state: dict[str, Any] | None, items: Items, *, now: float
) -> list[Drift]:
    """How one object's table state differs from the bucket (`current` None: the key reads as absent)."""
    drifts: list[Drift] = []
    if state is not None:
        token, expires = state.get("lease_token"), float(state.get("lease_expires") or 0)
        if token and expires < now:
            drifts.append(Drift(LEASE_OVERDUE, f"lease of {token} expired {now - expires:.0f} s ago"))
        elif state.get("dirty") and not token:
            drifts.append(Drift(DIRTY, "an attempt wrote items but did not commit"))
    status = (state or {}).get("status")
    if current is None:
        if items.count:
            drifts.append(Drift(RECORDS_FOR_ABSENT_OBJECT, f"{items.count} record items, object absent"))
        if status in ("present", "unreadable"):
            drifts.append(Drift(STATE_FOR_ABSENT_OBJECT, f"state says {status}, object absent"))
        return drifts
    if state is None:
        drifts.append(Drift(MISSING_STATE, "the object is in the bucket, the table has no state item"))
    elif status not in ("present", "unreadable"):
        drifts.append(Drift(NOT_MIRRORED, f"state says {status or 'nothing committed'}, object present"))
    elif not _same_version(state.get("version_id"), state.get("etag"), current):
        drifts.append(
            Drift(
                STALE_VERSION,
                f"table mirrors {state.get('version_id') or state.get('etag')}, "
                f"bucket holds {current.version_id or current.etag}",
            )
        )
    if items.other_version:
        drifts.append(Drift(STALE_RECORDS, f"{items.other_version} record items of another version"))
    if state is not None and status in ("present", "unreadable"):
        expected = int(state.get("record_count") or 0)
        if items.count != expected:
            drifts.append(
                Drift(COUNT_MISMATCH, f"state counts {expected} records, table holds {items.count}")
            )
    elif state is None and items.count:
        drifts.append(Drift(COUNT_MISMATCH, f"{items.count} record items without a state item"))
    return drifts


def _same_version(version_id: str | None, etag: str | None, current: Current) -> bool:
    """Versioned buckets compare version ids; unversioned ones (no id, or S3's "null") the ETag."""
    if version_id and current.version_id and current.version_id != "null":
        return version_id == current.version_id
    return etag is not None and etag == current.etag


@dataclass(slots=True)
class ObjectReport:
    key: str
    drifts: list[Drift]
    repaired: str | None = None  # the repair's outcome status
    remaining: list[Drift] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "drift": [{"kind": d.kind, "detail": d.detail} for d in self.drifts],
            "repaired": self.repaired,
            "remaining": [{"kind": d.kind, "detail": d.detail} for d in self.remaining],
        }


@dataclass(slots=True)
class Result:
    bucket: str
    table: str
    prefix: str
    objects_checked: int = 0
    table_keys_checked: int = 0
    reports: list[ObjectReport] = field(default_factory=list)

    @property
    def drift_remaining(self) -> int:
        return sum(1 for r in self.reports if (r.remaining if r.repaired is not None else r.drifts))

    def as_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "table": self.table,
            "prefix": self.prefix,
            "objects_checked": self.objects_checked,
            "table_keys_checked": self.table_keys_checked,
            "drifted": len(self.reports),
            "repaired": sum(1 for r in self.reports if r.repaired is not None),
            "drift_remaining": self.drift_remaining,
            "objects": [r.as_json() for r in self.reports],
        }


def repair_services(ctx: OpsContext) -> Services:
    """Real clients behind the use case's ports, as functions/core/wiring/lambda_services.py wires them."""
    s3 = ctx.client("s3")
    return Services(
        store=DynamoRecordStore(ctx.client("dynamodb"), ctx.output(outputs.TABLE_NAME)),
        objects=S3ObjectReader(s3),
        reports=S3ReportSink(s3, ctx.output(outputs.REJECTS_BUCKET_NAME)),
        datasets=datasets(),
        lease=LeasePolicy(max_wait_seconds=_REPAIR_WAIT_SECONDS),
    )


def _items(ctx: OpsContext, key: str, current: Current | None) -> Items:
    count = other = 0
    for item in record_items(ctx, key, projection="pk, sk, version_id, etag"):
        count += 1
        if current is not None:
            version = item.get("version_id", {}).get("S")
            etag = item.get("etag", {}).get("S")
            other += not _same_version(version, etag, current)
    return Items(count=count, other_version=other)


def _current_objects(ctx: OpsContext, prefix: str) -> Iterator[list[tuple[str, Current]]]:
    """Pages of (key, current version) of the bucket, delete markers left out (they read as absent).
    ListObjectVersions (Amazon S3 API Reference) pages up to 1,000 entries, `Versions` and `DeleteMarkers`
    each with `IsLatest`; on an unversioned bucket every object is listed once with VersionId "null"."""
    pages = (
        ctx.client("s3")
        .get_paginator("list_object_versions")
        .paginate(Bucket=ctx.output(outputs.BUCKET_NAME), Prefix=prefix)
    )
    for page in pages:
        yield [
            (v["Key"], Current(version_id=v.get("VersionId"), etag=str(v.get("ETag", "")).strip('"') or None))
            for v in page.get("Versions", [])
            if v.get("IsLatest")
        ]


def _states(ctx: OpsContext, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The state items of up to one page of keys, by key (consistent BatchGetItem)."""
    bucket = ctx.output(outputs.BUCKET_NAME)
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), _BATCH_GET):
        batch = [state_key(f"{bucket}/{k}") for k in keys[start : start + _BATCH_GET]]
        for item in batch_get(ctx, {"Keys": batch, "ConsistentRead": True}):
            found[item["pk"]["S"].removeprefix(f"{STATE_PREFIX}{bucket}/")] = plain(item)
    return found


def _table_keys(ctx: OpsContext, prefix: str) -> Iterator[str]:
    """Object keys the table knows under `prefix` (state items and record owners), page by page; a key
    may repeat."""
    bucket = ctx.output(outputs.BUCKET_NAME)
    state_prefix, owner_prefix = f"{STATE_PREFIX}{bucket}/", f"{bucket}/"
    pages = (
        ctx.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=ctx.output(outputs.TABLE_NAME),
            ProjectionExpression="pk, sk, #owner",
            FilterExpression="(begins_with(pk, :sp) AND sk = :state) OR begins_with(#owner, :op)",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={
                ":sp": {"S": state_prefix + prefix},
                ":state": {"S": STATE_SORT},
                ":op": {"S": owner_prefix + prefix},
            },
        )
    )
    for page in pages:
        for item in page.get("Items", []):
            if "owner" in item:
                yield item["owner"]["S"][len(owner_prefix) :]
            else:
                yield item["pk"]["S"][len(state_prefix) :]


def _is_live(ctx: OpsContext, key: str) -> bool:
    try:
        ctx.client("s3").head_object(Bucket=ctx.output(outputs.BUCKET_NAME), Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "405"):
            # Absent, or a delete marker on top: S3 answers 404 (GetObject/HeadObject without a version,
            # S3 user guide "Working with delete markers"; 405 only when a marker's version is named).
            return False
        raise
    return True


def reconcile(
    ctx: OpsContext,
    *,
    prefix: str = "",
    repair: bool = False,
    on_progress: Callable[[str, int], None] = lambda phase, count: None,
    clock: Callable[[], float] = time.time,
) -> Result:
    """Compare every object under `prefix` with the table; with `repair`, re-mirror each drifted one."""
    result = Result(ctx.output(outputs.BUCKET_NAME), ctx.output(outputs.TABLE_NAME), prefix)
    services = repair_services(ctx) if repair else None

    def handle(key: str, current: Current | None, state: dict[str, Any] | None) -> None:
        drifts = classify(current, state, _items(ctx, key, current), now=clock())
        if not drifts:
            return
        report = ObjectReport(key, drifts)
        if services is not None:
            committed = ObjectState.from_item(_raw_state(ctx, key))
            report.repaired = repair_object(services, result.bucket, key, committed=committed).status.value
            after = state_item(ctx, key)
            live = _is_live(ctx, key)
            report.remaining = classify(
                current if live else None, after, _items(ctx, key, current if live else None), now=clock()
            )
        result.reports.append(report)

    for page in _current_objects(ctx, prefix):
        states = _states(ctx, [key for key, _ in page])
        for key, current in page:
            handle(key, current, states.get(key))
            result.objects_checked += 1
        on_progress("bucket", result.objects_checked)
    checked: set[str] = set()
    for key in _table_keys(ctx, prefix):
        if key in checked:
            continue
        if len(checked) >= _CHECKED_CAP:
            checked.clear()
        checked.add(key)
        result.table_keys_checked += 1
        if result.table_keys_checked % 100 == 0:
            on_progress("table", result.table_keys_checked)
        if not _is_live(ctx, key):
            handle(key, None, state_item(ctx, key))
    on_progress("table", result.table_keys_checked)
    return result


def _raw_state(ctx: OpsContext, key: str) -> dict[str, Any] | None:
    bucket = ctx.output(outputs.BUCKET_NAME)
    response = ctx.client("dynamodb").get_item(
        TableName=ctx.output(outputs.TABLE_NAME), Key=state_key(f"{bucket}/{key}"), ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item
