"""The records table's keys: items in DynamoDB's attribute-value format, and how they are keyed.

Position-keyed records live under `pk = <object key>`, `sk = <zero-padded position>`; natural-key records
under `pk = <dataset>#<fields>`, `sk = "record"`; the per-object state item (the version guard) under
`pk = "object#<bucket>/<key>"`, `sk = "state"` (docs/data-model.md).
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


def position_sort_key(position: int) -> str:
    return str(position).zfill(POSITION_WIDTH)


def state_key(object_id: str) -> Key:
    return {"pk": {"S": STATE_PREFIX + object_id}, "sk": {"S": STATE_SORT}}
