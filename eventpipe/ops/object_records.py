"""Read one object's position-keyed record items from the records table, in position order.

The one place outside the Lambda write path that knows where an object's records live
(functions/core/domain/table_layout.py): layout 2 spreads object `K`'s positions over the partitions
`K#00`..`K#63` (blocks of 25 positions, round-robin); layout 1 (a state item without `layout`) kept them
all under `pk = K`. Each partition is read with a consistent `Query` on its sort-key range of positions
(each result is in sort-key order), and `heapq.merge` interleaves them by sort key, so memory holds one
page (at most 1 MB: DynamoDB developer guide, "Filter expressions for the Query operation") per
partition read, whatever the object's size. Used by
`eventpipe object`/`records`/`reconcile` (eventpipe/ops/inspect.py, reconcile.py); the local demo and the
benchmarks read whole tables or single positions and need no more than table_layout.py.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from functions.core.domain.table_layout import (
    LAYOUT,
    LEGACY_LAYOUT,
    POSITION_WIDTH,
    partitions_between,
)

_FIRST_POSITION = "0".zfill(POSITION_WIDTH)
_LAST_POSITION = "9" * POSITION_WIDTH


@dataclass(frozen=True, slots=True)
class Span:
    """Which partitions can hold an object's position-keyed records.

    `last_position` bounds the layout-2 shards read (None: all 64); `legacy` adds the layout-1
    partition `pk = K`.
    """

    last_position: int | None
    legacy: bool

    @classmethod
    def everything(cls) -> Span:
        """Every partition the object's records could be in, whatever its state says (65 queries)."""
        return cls(last_position=None, legacy=True)

    @classmethod
    def of_state(cls, state: Mapping[str, Any] | None) -> Span:
        """The partitions a state item (plain data, as `inspect.state_item` returns it) vouches for.

        A committed, settled state bounds positions by its `last_position`: the write path removes every
        item beyond it before it commits. While an attempt holds the lease, or one wrote and did not
        commit (`dirty`), items may lie beyond it: read every shard. Without a state item nothing is known
        (every shard, and the legacy partition). A state without `layout` was committed by layout 1,
        whose records sit under `pk = K`.
        """
        if state is None:
            return cls.everything()
        legacy = int(state.get("layout") or LEGACY_LAYOUT) < LAYOUT
        if state.get("dirty") or state.get("lease_token"):
            return cls(last_position=None, legacy=legacy)
        return cls(last_position=int(state.get("last_position") or 0), legacy=legacy)

    def covers(self, key: str, partition: str) -> bool:
        """Whether reading `key` through this span reads the partition key value `partition`."""
        if partition == key:
            return self.legacy
        return partition in partitions_between(key, 1, self.last_position)

    def partitions(self, key: str) -> list[str]:
        """The partition key values to query for `key`, layout-2 shards first (in shard order)."""
        shards = partitions_between(key, 1, self.last_position)
        return [*shards, key] if self.legacy else shards


def position_items(
    dynamodb: Any,
    table: str,
    key: str,
    *,
    owner: str,
    span: Span,
    projection: str | None = None,
    ordered: bool = True,
) -> Iterator[dict[str, Any]]:
    """The position-keyed record items of object `key` (`owner` = "<bucket>/<key>") in the partitions
    of `span`, raw DynamoDB format, streamed: in position order when `ordered` (a `projection` must then
    name `sk`), else partition after partition (cheaper in memory: one page at a time).

    The `owner` filter keeps another object's items out: a layout-1 object named `K#00` had its records
    under the same partition key value as shard 00 of `K`.
    """
    reads = [_partition(dynamodb, table, pk, owner, projection) for pk in span.partitions(key)]
    if not ordered:
        return itertools.chain.from_iterable(reads)
    return heapq.merge(*reads, key=lambda item: str(item["sk"]["S"]))


def _partition(
    dynamodb: Any, table: str, pk: str, owner: str, projection: str | None
) -> Iterator[dict[str, Any]]:
    """One partition's position items in sort-key order, page by page (Query returns items in sort-key
    order, ascending by default: DynamoDB API reference, Query `ScanIndexForward`)."""
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
        "FilterExpression": "#owner = :owner",
        "ExpressionAttributeNames": {"#owner": "owner"},
        "ExpressionAttributeValues": {
            ":pk": {"S": pk},
            ":first": {"S": _FIRST_POSITION},
            ":last": {"S": _LAST_POSITION},
            ":owner": {"S": owner},
        },
        "ConsistentRead": True,
    }
    if projection:
        query["ProjectionExpression"] = projection
    for page in dynamodb.get_paginator("query").paginate(**query):
        yield from page.get("Items", [])
