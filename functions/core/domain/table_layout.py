"""The records table's keys: items in DynamoDB's attribute-value format, and how they are keyed.

Position-keyed records of object `K` are spread over `SHARD_COUNT` partition key values so one large
object is not limited to one partition's throughput (1,000 write units per second: DynamoDB developer
guide, "Best practices for designing and using partition keys effectively"; "Understanding DynamoDB warm
throughput in different scenarios"):

    pk = f"{K}#{shard:02d}",  shard = ((position - 1) // SHARD_BLOCK) % SHARD_COUNT
    sk = zero-padded position

Blocks of `SHARD_BLOCK` consecutive positions (one BatchWriteItem's worth) go round-robin to the shards,
so the batches a writer pool has in flight land on different partition keys. The suffix has a fixed
width, so the mapping (K, shard) -> pk is injective: no two objects share a partition key value.
An object of at most 25 records uses one partition. Reading one object in order: query the partitions
`partitions_between(K, 1, last_position)` and merge their results by sort key (each is sorted).

Natural-key records live under `pk = <dataset>#<fields>`, `sk = "record"`; the per-object state item
(the version guard) under `pk = "object#<bucket>/<key>"`, `sk = "state"`. Items of different kinds never
collide: their sort keys differ (digits, "record", "state"). docs/data-model.md has the whole picture.
"""

from __future__ import annotations

from typing import Any, Final

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]
Key = dict[str, AttributeValue]

POSITION_WIDTH: Final = 12  # zero-padded so sort order is record order
NATURAL_KEY_SORT: Final = "record"  # sort key of natural-key items (never all digits, never "state")
STATE_PREFIX: Final = "object#"
STATE_SORT: Final = "state"

SHARD_COUNT: Final = 64  # 64 partitions x 1,000 WCU/s covers an on-demand table's default 40,000/s
SHARD_BLOCK: Final = 25  # consecutive positions per shard block: one BatchWriteItem
# Layout 1 (before shards) keyed every record of an object under pk = <object key>. A state item without
# a `layout` attribute was committed by it; the write path removes such leftovers (mirror_object.py).
LEGACY_LAYOUT: Final = 1
LAYOUT: Final = 2


def position_sort_key(position: int) -> str:
    return str(position).zfill(POSITION_WIDTH)


def shard_of(position: int) -> int:
    return ((position - 1) // SHARD_BLOCK) % SHARD_COUNT


def shard_partition(object_key: str, shard: int) -> str:
    return f"{object_key}#{shard:02d}"


def record_partition(object_key: str, position: int) -> str:
    """The partition key of the position-keyed record at `position` (1-based) of `object_key`."""
    return shard_partition(object_key, shard_of(position))


def record_key(object_key: str, position: int) -> Key:
    return {"pk": {"S": record_partition(object_key, position)}, "sk": {"S": position_sort_key(position)}}


def partitions_between(object_key: str, first: int, last: int | None) -> list[str]:
    """The partitions that can hold positions `first..last` of `object_key` (every shard if `last` is
    None, i.e. unknown), in shard order."""
    first = max(first, 1)
    if last is not None and last < first:
        return []
    blocks = None if last is None else (last - 1) // SHARD_BLOCK - (first - 1) // SHARD_BLOCK + 1
    if blocks is None or blocks >= SHARD_COUNT:
        shards = list(range(SHARD_COUNT))
    else:
        start = shard_of(first)
        shards = sorted({(start + block) % SHARD_COUNT for block in range(blocks)})
    return [shard_partition(object_key, shard) for shard in shards]


def state_key(object_id: str) -> Key:
    return {"pk": {"S": STATE_PREFIX + object_id}, "sk": {"S": STATE_SORT}}
