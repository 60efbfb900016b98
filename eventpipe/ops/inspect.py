"""One object seen through the table and the buckets: its state item, its records, its rejects report.

Layout (docs/data-model.md): the state item is `pk = object#<bucket>/<key>`, `sk = state`; position-keyed
records are spread over `pk = <key>#00`..`<key>#63` (layout 2; `pk = <key>` under layout 1), `sk` = the
zero-padded position, read in order by eventpipe/ops/object_records.py; natural-key records are found
through the `by-owner` index (KEYS_ONLY, so each is read back with a consistent BatchGetItem). The rejects
report of the committed version is at `report_key(bucket, key, sequencer)`.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from eventpipe.contract import outputs
from eventpipe.ops.context import OpsContext
from eventpipe.ops.object_records import Span, position_items
from functions.core.domain.datasets import DatasetRegistry
from functions.core.domain.rejects_report import report_key
from functions.core.domain.table_layout import LEGACY_LAYOUT, NATURAL_KEY_SORT, state_key

OWNER_INDEX = "by-owner"
_BATCH_GET = 100  # DynamoDB BatchGetItem maximum keys per request
_deserializer = TypeDeserializer()


@functools.cache
def datasets() -> DatasetRegistry:
    return DatasetRegistry.load()


def plain(value: Any) -> Any:
    """A DynamoDB-typed value (or item) as plain JSON-able data (numbers as int or float)."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _TYPES:
        return plain(_deserializer.deserialize(value))
    if isinstance(value, dict):
        return {name: plain(inner) for name, inner in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(inner) for inner in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


_TYPES = {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"}


def state_item(ctx: OpsContext, key: str) -> dict[str, Any] | None:
    """The object's state item as plain data, read consistently; None when the table has none."""
    bucket = ctx.output(outputs.BUCKET_NAME)
    item = ctx.client("dynamodb").get_item(
        TableName=ctx.output(outputs.TABLE_NAME), Key=state_key(f"{bucket}/{key}"), ConsistentRead=True
    )
    found = item.get("Item")
    return plain(found) if found else None


def record_items(
    ctx: OpsContext,
    key: str,
    *,
    span: Span | None = None,
    projection: str | None = None,
    ordered: bool = True,
) -> Iterator[dict[str, Any]]:
    """The object's record items (raw DynamoDB format), streamed page by page: position-keyed ones from
    the partitions of `span` (default: those its state item vouches for, `Span.of_state`), then
    natural-key ones (found through the `by-owner` index); each group in position order when `ordered`
    (a `projection` must then name `sk`), else as read (memory: one page)."""
    if span is None:
        span = Span.of_state(state_item(ctx, key))
    dynamodb, table = ctx.client("dynamodb"), ctx.output(outputs.TABLE_NAME)
    owner = f"{ctx.output(outputs.BUCKET_NAME)}/{key}"
    yield from position_items(
        dynamodb, table, key, owner=owner, span=span, projection=projection, ordered=ordered
    )
    if not datasets().for_key(key).has_natural_key:
        return
    natural = _natural_items(ctx, owner, projection)
    if not ordered:
        yield from natural
        return
    # Sorting holds the object's natural-key items at once: bounded by one object, not by the table.
    yield from sorted(natural, key=lambda item: int(item.get("position", {}).get("N", "0")))


def _natural_items(ctx: OpsContext, owner: str, projection: str | None) -> Iterator[dict[str, Any]]:
    """The natural-key items `owner` owns, 100 index entries at a time (KEYS_ONLY index, eventually
    consistent: each item is read back consistently and kept only if the object still owns it)."""
    pages = (
        ctx.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=ctx.output(outputs.TABLE_NAME),
            IndexName=OWNER_INDEX,
            KeyConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner}},
        )
    )
    keys = (
        {"pk": item["pk"], "sk": item["sk"]}
        for page in pages
        for item in page.get("Items", [])
        if item["sk"]["S"] == NATURAL_KEY_SORT
    )
    while batch := list(itertools.islice(keys, _BATCH_GET)):
        request: dict[str, Any] = {"Keys": batch, "ConsistentRead": True}
        if projection:
            request["ProjectionExpression"] = f"{projection}, #owner"
            request["ExpressionAttributeNames"] = {"#owner": "owner"}
        for item in batch_get(ctx, request):
            if item.get("owner", {}).get("S") == owner:  # another object may have taken the key over
                yield item


def batch_get(ctx: OpsContext, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The items of one BatchGetItem request (at most 100 keys) on the table, retrying UnprocessedKeys
    with exponential backoff (DynamoDB API reference, BatchGetItem: a partial result returns the rest in
    UnprocessedKeys, "retry the batch operation on those items" with backoff)."""
    dynamodb, table = ctx.client("dynamodb"), ctx.output(outputs.TABLE_NAME)
    pending: dict[str, Any] = {table: request}
    attempt = 0
    while pending:
        if attempt:
            time.sleep(min(0.05 * 2**attempt, 5.0))
        response = dynamodb.batch_get_item(RequestItems=pending)
        yield from response.get("Responses", {}).get(table, [])
        pending = response.get("UnprocessedKeys") or {}
        attempt += 1


def records(ctx: OpsContext, key: str) -> Iterator[dict[str, Any]]:
    """The object's records in order: position, storage key, provenance and the record itself."""
    for item in record_items(ctx, key):
        value = plain(item)
        yield {
            "position": value.get("position"),
            "pk": value.get("pk"),
            "sk": value.get("sk"),
            "dataset": value.get("dataset"),
            "version_id": value.get("version_id"),
            "event_id": value.get("event_id"),
            "ingested_at": value.get("ingested_at"),
            "data": value.get("data"),
        }


def _rejects(ctx: OpsContext, key: str, state: dict[str, Any] | None) -> dict[str, Any] | None:
    """The committed version's rejects report: its key and entries (None without a committed sequencer)."""
    if not state or not state.get("sequencer"):
        return None
    bucket = ctx.output(outputs.BUCKET_NAME)
    location = report_key(bucket, key, str(state["sequencer"]))
    try:
        rejects = ctx.output(outputs.REJECTS_BUCKET_NAME)
        body = ctx.client("s3").get_object(Bucket=rejects, Key=location)["Body"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return {"key": location, "exists": False, "entries": []}
        raise
    entries = [json.loads(line) for line in body.read().decode("utf-8").splitlines() if line.strip()]
    return {"key": location, "exists": True, "entries": entries}


def _in_bucket(ctx: OpsContext, key: str, version_id: str | None) -> dict[str, Any]:
    """What the ingest bucket holds under `key` (that version, or the current one)."""
    arguments = {"Bucket": ctx.output(outputs.BUCKET_NAME), "Key": key}
    if version_id:
        arguments["VersionId"] = version_id
    try:
        head = ctx.client("s3").head_object(**arguments)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NoSuchVersion", "400", "405"):
            return {"exists": False, "version_id": version_id, "etag": None, "size": None}
        raise
    return {
        "exists": True,
        "version_id": head.get("VersionId", version_id),
        "etag": str(head.get("ETag", "")).strip('"') or None,
        "size": head.get("ContentLength"),
    }


def describe(ctx: OpsContext, key: str, *, version_id: str | None = None) -> dict[str, Any]:
    """Everything about one object: bucket, state, counts, rejects, the last event that touched it."""
    bucket = ctx.output(outputs.BUCKET_NAME)
    state = state_item(ctx, key)
    span = Span.of_state(state)
    count = sum(1 for _ in record_items(ctx, key, span=span, projection="pk, sk", ordered=False))
    expires = (state or {}).get("lease_expires")
    lease = None
    if state and state.get("lease_token"):
        lease = {
            "holder": state["lease_token"],
            "expires": datetime.fromtimestamp(float(expires or 0), UTC).isoformat(timespec="seconds"),
            "expired": float(expires or 0) < datetime.now(UTC).timestamp(),
        }
    in_bucket = _in_bucket(ctx, key, version_id)
    mirrored = (state or {}).get("version_id")
    wanted = version_id or in_bucket["version_id"]
    return {
        "bucket": bucket,
        "key": key,
        "dataset": datasets().for_key(key).name,
        "object": in_bucket,
        "requested_version": version_id,
        # whether the table holds that version (the requested one, else the current one)
        "version_mirrored": bool(
            state
            and state.get("status") in ("present", "unreadable")
            and in_bucket["exists"]
            and (mirrored == wanted if mirrored else state.get("etag") == in_bucket["etag"])
        ),
        "state": None
        if state is None
        else {
            "status": state.get("status"),
            "version_id": mirrored,
            "etag": state.get("etag"),
            "sequencer": state.get("sequencer"),
            "lease": lease,
            "pending_sequencer": state.get("pending_sequencer"),
            "dirty": bool(state.get("dirty")),
            "record_count": state.get("record_count"),
            "rejected_count": state.get("rejected_count"),
            "last_position": state.get("last_position"),
            "layout": state.get("layout", LEGACY_LAYOUT),
        },
        "records": count,
        # the partitions read for that count (layout 2 shards `<key>#NN`, plus `<key>` under layout 1)
        "partitions_read": len(span.partitions(key)),
        "rejected": (state or {}).get("rejected_count", 0),
        "rejects_report": _rejects(ctx, key, state),
        "last_event": None
        if state is None or not state.get("event_id")
        else {"event_id": state["event_id"], "committed_at": state.get("committed_at")},
    }
