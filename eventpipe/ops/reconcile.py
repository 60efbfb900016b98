"""Prove that the records table equals the bucket, object by object, and repair what drifted.

Two streaming passes, memory bounded by one page per partition read plus capped sets of keys already
checked:
1. the bucket's current objects (ListObjectVersions pages; `IsLatest` versions, delete markers mean
   absent): each object's state item (BatchGetItem) and record items are compared with it. The record
   items are read from the partitions the state vouches for (object_records.Span.of_state: the shards
   of positions 1..last_position, every shard when unknown, plus `pk = <key>` for a layout-1 state);
2. the table's state and record items of the bucket (Scan pages): an object the bucket no longer holds
   (HeadObject 404) must have no record items and no state that says present, and a record item in a
   partition pass 1 did not read (beyond `last_position`, or under the layout-1 key of a layout-2 object)
   gets its object checked again across every partition, so no item escapes the comparison.

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
from eventpipe.ops.object_records import Span
from functions.core.adapters.dynamodb_record_store import DynamoRecordStore
from functions.core.adapters.s3_object_reader import S3ObjectReader
from functions.core.adapters.s3_report_sink import S3ReportSink
from functions.core.domain.object_state import ObjectState
from functions.core.domain.table_layout import NATURAL_KEY_SORT, STATE_PREFIX, STATE_SORT, state_key
from functions.core.use_cases.ports import LeasePolicy, Services
from functions.core.use_cases.repair import repair_object
from functions.core.wiring.settings import DEFAULT_MAX_JSON_ARRAY_BYTES

_BATCH_GET = 100  # BatchGetItem maximum keys per request
_CHECKED_CAP = 100_000  # keys remembered in pass 2; beyond it a key may be checked twice (harmless)
_PROGRESS_EVERY = 100  # table keys between two progress reports
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
LEGACY_LAYOUT = "legacy_layout"  # record items still under key layout 1 (pk = the object key)


@dataclass(frozen=True, slots=True)
class Current:
    """The object's current version in the bucket."""

    version_id: str | None
    etag: str | None


@dataclass(frozen=True, slots=True)
class Items:
    """What the table holds for one object: how many record items, how many of another version, and
    how many of them under the layout-1 partition key (pk = the object key, no shard suffix)."""

    count: int = 0
    other_version: int = 0
    legacy: int = 0


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
    if items.legacy:
        drifts.append(Drift(LEGACY_LAYOUT, f"{items.legacy} record items under key layout 1 (pk = key)"))
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
        # The stack sets the functions' limit to this default (infra/config.py); a larger .json object is
        # reported as object_too_large exactly as ingest would.
        max_json_bytes=DEFAULT_MAX_JSON_ARRAY_BYTES,
        lease=LeasePolicy(max_wait_seconds=_REPAIR_WAIT_SECONDS),
    )


def _items(ctx: OpsContext, key: str, current: Current | None, span: Span) -> Items:
    """Count the object's record items in the partitions of `span`, in any order (one page in memory)."""
    count = other = legacy = 0
    items = record_items(ctx, key, span=span, projection="pk, sk, version_id, etag", ordered=False)
    for item in items:
        count += 1
        legacy += item["pk"]["S"] == key
        if current is not None:
            version = item.get("version_id", {}).get("S")
            etag = item.get("etag", {}).get("S")
            other += not _same_version(version, etag, current)
    return Items(count=count, other_version=other, legacy=legacy)


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


def _table_items(ctx: OpsContext, prefix: str) -> Iterator[tuple[str, str | None]]:
    """(object key, partition key of a position-keyed record item, or None for a state or natural-key
    item) of every state and record item the table holds under `prefix`, page by page; consecutive
    repeats (one partition's items) are reported once."""
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
    previous: tuple[str, str | None] | None = None
    for page in pages:
        for item in page.get("Items", []):
            if "owner" in item:
                # A natural-key item's partition is its key, not the object's: its object's check reads
                # it through the `by-owner` index whatever the state says, like a state item.
                natural = item["sk"]["S"] == NATURAL_KEY_SORT
                partition = None if natural else item["pk"]["S"]
                seen: tuple[str, str | None] = (item["owner"]["S"][len(owner_prefix) :], partition)
            else:
                seen = (item["pk"]["S"][len(state_prefix) :], None)
            if seen != previous:
                yield seen
            previous = seen


def _current_of(ctx: OpsContext, key: str) -> Current | None:
    """The object's current version as S3 serves it now, or None when the key reads as absent."""
    try:
        head = ctx.client("s3").head_object(Bucket=ctx.output(outputs.BUCKET_NAME), Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "405"):
            # Absent, or a delete marker on top: S3 answers 404 (GetObject/HeadObject without a version,
            # S3 user guide "Working with delete markers"; 405 only when a marker's version is named).
            return None
        raise
    return Current(version_id=head.get("VersionId"), etag=str(head.get("ETag", "")).strip('"') or None)


@dataclass(slots=True)
class _Seen:
    """What the run knows of one key: what S3 serves (None: absent), which partitions its check read
    (None: not checked yet), and whether pass 2 has met it (counted in `table_keys_checked`)."""

    current: Current | None
    span: Span | None = None
    in_table: bool = False


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
    seen: dict[str, _Seen] = {}  # capped: a key forgotten is looked up again (HeadObject, GetItem)
    done: set[str] = set()  # keys reported (or checked across every partition): one report per object

    def remember(key: str, entry: _Seen) -> _Seen:
        if len(seen) >= _CHECKED_CAP and key not in seen:
            seen.clear()
        seen[key] = entry
        return entry

    def handle(key: str, current: Current | None, state: dict[str, Any] | None, span: Span) -> None:
        drifts = classify(current, state, _items(ctx, key, current, span), now=clock())
        if not drifts:
            return
        done.add(key)
        report = ObjectReport(key, drifts)
        if services is not None:
            committed = ObjectState.from_item(_raw_state(ctx, key))
            report.repaired = repair_object(services, result.bucket, key, committed=committed).status.value
            after = state_item(ctx, key)
            live = current if _current_of(ctx, key) is not None else None
            # The repaired object is checked across every partition: a leftover anywhere still drifts.
            report.remaining = classify(live, after, _items(ctx, key, live, Span.everything()), now=clock())
        result.reports.append(report)

    for page in _current_objects(ctx, prefix):
        states = _states(ctx, [key for key, _ in page])
        for key, current in page:
            state = states.get(key)
            span = Span.of_state(state)
            remember(key, _Seen(current, span))
            handle(key, current, state, span)
            result.objects_checked += 1
        on_progress("bucket", result.objects_checked)

    for key, partition in _table_items(ctx, prefix):
        if key in done:
            continue
        entry = seen.get(key) or remember(key, _Seen(_current_of(ctx, key)))
        if not entry.in_table:
            entry.in_table = True
            result.table_keys_checked += 1
            if result.table_keys_checked % _PROGRESS_EVERY == 0:
                on_progress("table", result.table_keys_checked)
        if entry.span is None:
            # Not listed by pass 1 (absent, or put since): read what its state vouches for, once.
            state = state_item(ctx, key)
            entry.span = Span.of_state(state)
            if entry.current is None:
                handle(key, None, state, entry.span)  # state_for_absent_object, and what it vouches for
                if key in done:
                    continue
        if partition is None or entry.span.covers(key, partition):
            continue  # an item the object's own check already read
        # A record item no check read: of an absent object, beyond the state's last position, or under
        # key layout 1 of a layout-2 object. Check the object across every partition.
        done.add(key)
        handle(key, entry.current, state_item(ctx, key), Span.everything())
    on_progress("table", result.table_keys_checked)
    return result


def _raw_state(ctx: OpsContext, key: str) -> dict[str, Any] | None:
    bucket = ctx.output(outputs.BUCKET_NAME)
    response = ctx.client("dynamodb").get_item(
        TableName=ctx.output(outputs.TABLE_NAME), Key=state_key(f"{bucket}/{key}"), ConsistentRead=True
    )
    item: dict[str, Any] | None = response.get("Item")
    return item
