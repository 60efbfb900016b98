"""Records -> DynamoDB items: validation and exact conversion to the low-level attribute format.

The converter is written for speed (boto3's TypeSerializer costs ~5x the JSON parse per record) and
for exactness: numbers stay Decimal/int strings, never floats. Every way a record can be unstorable is
a `RecordRejectedError` with a `Reason`, so one bad record never stops the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, NoReturn

from functions.core.domain.datasets import Dataset
from functions.core.domain.events import ObjectEvent
from functions.core.domain.readers import NonFinite, UnrepresentableNumber
from functions.core.domain.reasons import Reason
from functions.core.domain.table_layout import (
    NATURAL_KEY_SORT,
    POSITION_WIDTH,
    SHARD_COUNT,
    AttributeValue,
    Item,
    position_sort_key,
    shard_of,
    shard_partition,
)

MAX_ITEM_BYTES: Final = 400 * 1024
# DynamoDB allows 32 levels of nesting. Counting the `data` map as level 1 and refusing level 32 keeps a
# record valid however DynamoDB counts the item's own level: a report beats a batch DynamoDB refuses.
MAX_NESTING: Final = 32
MAX_DIGITS: Final = 38
MAX_KEY_BYTES: Final = 2048  # partition key limit
_NULL: Final = {"NULL": True}
_TRUE: Final = {"BOOL": True}
_FALSE: Final = {"BOOL": False}
_INT_LIMIT: Final = 10**MAX_DIGITS


class RecordRejectedError(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _utf8_len(text: str) -> int:
    """Strict: a lone surrogate raises UnicodeEncodeError, which `to_attribute` turns into a reject."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _lenient_utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _number(text: str, digits: int, adjusted: int) -> tuple[AttributeValue, int]:
    if digits > MAX_DIGITS:
        raise RecordRejectedError(
            Reason.NUMBER_TOO_PRECISE, f"{text[:60]} has more than 38 significant digits"
        )
    if not -130 <= adjusted <= 125:
        raise RecordRejectedError(Reason.NUMBER_OUT_OF_RANGE, f"{text[:60]} is outside 1E-130 .. 9.99E+125")
    return {"N": text}, (digits + 1) // 2 + 1


def _int(value: int) -> tuple[AttributeValue, int]:
    text = str(value)
    if -_INT_LIMIT < value < _INT_LIMIT:  # fast path: always within precision and range
        return {"N": text}, len(text) // 2 + 1
    magnitude = text.lstrip("-")
    return _number(text, len(magnitude.rstrip("0")), len(magnitude) - 1)


def _decimal(value: Decimal) -> tuple[AttributeValue, int]:
    text = str(value)
    if not value:
        return {"N": "0"}, 1
    adjusted = value.adjusted()
    if len(text) <= MAX_DIGITS and -130 <= adjusted <= 125:  # fast path: short text, few digits
        return {"N": text}, len(text) // 2 + 1
    digits = value.as_tuple().digits
    significant = len(digits)
    while significant > MAX_DIGITS and digits[significant - 1] == 0:  # trailing zeros are not precision
        significant -= 1
    return _number(text, significant, adjusted)


def _convert(value: Any, depth: int) -> tuple[AttributeValue, int]:
    kind = type(value)
    if kind is str:
        return {"S": value}, _utf8_len(value)
    if kind is dict:
        return _map(value, depth + 1)
    if kind is int:
        return _int(value)
    if kind is Decimal:
        return _decimal(value)
    if kind is bool:
        return (_TRUE if value else _FALSE), 1
    if value is None:
        return _NULL, 1
    if kind is list:
        return _list(value, depth + 1)
    if kind is NonFinite:
        raise RecordRejectedError(Reason.NON_FINITE_NUMBER, f"{value!r} cannot be stored in DynamoDB")
    if kind is UnrepresentableNumber:
        _reject_unrepresentable(value.literal)
    raise RecordRejectedError(Reason.NOT_AN_OBJECT, f"unsupported value type {kind.__name__}")


def _map(record: dict[str, Any], depth: int) -> tuple[AttributeValue, int]:
    if depth >= MAX_NESTING:
        raise RecordRejectedError(Reason.NESTING_TOO_DEEP, f"nested {MAX_NESTING} or more levels deep")
    out: dict[str, AttributeValue] = {}
    size = 3
    for name, value in record.items():
        if not name:
            raise RecordRejectedError(Reason.EMPTY_ATTRIBUTE_NAME, "attribute names must not be empty")
        # Strings are most values: handled inline, the hot path saves two calls per attribute.
        if type(value) is str:
            out[name] = {"S": value}
            size += len(value) if value.isascii() else len(value.encode("utf-8"))
        else:
            out[name], value_size = _convert(value, depth)
            size += value_size
        size += (len(name) if name.isascii() else len(name.encode("utf-8"))) + 1
    return {"M": out}, size


def _list(values: list[Any], depth: int) -> tuple[AttributeValue, int]:
    if depth >= MAX_NESTING:
        raise RecordRejectedError(Reason.NESTING_TOO_DEEP, f"nested {MAX_NESTING} or more levels deep")
    out: list[AttributeValue] = []
    size = 3
    for value in values:
        attribute, value_size = _convert(value, depth)
        out.append(attribute)
        size += value_size + 1
    return {"L": out}, size


def to_attribute(record: Any) -> tuple[AttributeValue, int]:
    """Convert one JSON object into a DynamoDB map attribute and its size in bytes (DynamoDB rules).

    The map sits one level below the item (attribute `data`), hence depth 1.
    """
    if type(record) is not dict:
        raise RecordRejectedError(
            Reason.NOT_AN_OBJECT, f"a record must be a JSON object, not {_json_type(record)}"
        )
    try:
        return _map(record, 1)
    except UnicodeEncodeError as bad:
        # JSON's \u escapes can name half of a UTF-16 surrogate pair. DynamoDB strings are UTF-8, which
        # has no encoding for it ("Strings are Unicode with UTF-8 binary encoding", DynamoDB developer
        # guide, "Supported data types and naming rules in Amazon DynamoDB",
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html),
        # so the record is rejected rather than the whole batch.
        surrogate = bad.object[bad.start]
        raise RecordRejectedError(
            Reason.LONE_SURROGATE,
            f"a string holds \\u{ord(surrogate):04x}, half of a UTF-16 surrogate pair: "
            "it has no UTF-8 encoding, so DynamoDB cannot store it",
        ) from None


def _reject_unrepresentable(literal: str) -> NoReturn:
    """A number the reader could not hold: an integer of more than 4,300 digits, or an exponent beyond
    decimal's range (zero mantissas never get here). Either is outside 1E-130 .. 9.99E+125."""
    mantissa = re.split("[eE]", literal.lstrip("-"), maxsplit=1)[0]
    if len(mantissa.replace(".", "").strip("0")) > MAX_DIGITS:
        raise RecordRejectedError(
            Reason.NUMBER_TOO_PRECISE, f"{literal[:60]}... has more than 38 significant digits"
        )
    raise RecordRejectedError(Reason.NUMBER_OUT_OF_RANGE, f"{literal[:60]}... is outside 1E-130 .. 9.99E+125")


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where the records of one object version come from; copied onto every item."""

    bucket: str
    key: str
    sequencer: str
    event_id: str
    ingested_at: str
    version_id: str | None = None
    etag: str | None = None
    replay_name: str | None = None

    @classmethod
    def of_event(cls, event: ObjectEvent, ingested_at: str) -> Provenance:
        """The provenance of the records of the version `event` names (one source for every writer)."""
        return cls(
            bucket=event.bucket,
            key=event.key,
            sequencer=event.sequencer,
            event_id=event.event_id,
            ingested_at=ingested_at,
            version_id=event.version_id,
            etag=event.etag,
            replay_name=event.replay_name,
        )

    @property
    def owner(self) -> str:
        return f"{self.bucket}/{self.key}"


class ItemBuilder:
    """Builds the items of one object version: keys by the dataset's rule, provenance, record data."""

    def __init__(self, dataset: Dataset, provenance: Provenance) -> None:
        self.dataset = dataset
        self._validate: Callable[[Any], str | None] | None = dataset.validator()
        base: Item = {
            "owner": {"S": provenance.owner},
            "dataset": {"S": dataset.name},
            "source_bucket": {"S": provenance.bucket},
            "source_key": {"S": provenance.key},
            "sequencer": {"S": provenance.sequencer},
            "ingested_at": {"S": provenance.ingested_at},
            "event_id": {"S": provenance.event_id},
        }
        optional = {
            "version_id": provenance.version_id,
            "etag": provenance.etag,
            "replay_name": provenance.replay_name,
        }
        base.update({name: {"S": value} for name, value in optional.items() if value is not None})
        self._base = base
        self._base_size = sum(_lenient_utf8_len(n) + _lenient_utf8_len(v["S"]) for n, v in base.items())
        # One partition key value per shard, built once (table_layout.py spreads an object over them).
        self._partitions = [{"S": shard_partition(provenance.key, shard)} for shard in range(SHARD_COUNT)]
        self._key_size = _lenient_utf8_len(self._partitions[0]["S"])

    def build(self, position: int, record: Any) -> Item:
        """The item for the record at `position`, or RecordRejectedError saying why it cannot be stored."""
        data, data_size = to_attribute(record)
        if self._validate is not None:
            violation = self._validate(record)
            if violation is not None:
                raise RecordRejectedError(Reason.SCHEMA_VIOLATION, violation)
        item = self._base.copy()
        if self.dataset.natural_key:
            partition = self._natural_partition(record)
            item["pk"] = {"S": partition}
            item["sk"] = {"S": NATURAL_KEY_SORT}
            key_size = _utf8_len(partition) + len(NATURAL_KEY_SORT)
        else:
            item["pk"] = self._partitions[shard_of(position)]
            item["sk"] = {"S": position_sort_key(position)}
            key_size = self._key_size + POSITION_WIDTH
        position_text = str(position)
        item["position"] = {"N": position_text}
        item["data"] = data
        # attribute names pk, sk, position, data = 2 + 2 + 8 + 4 bytes
        size = self._base_size + key_size + 16 + len(position_text) + data_size
        if size > MAX_ITEM_BYTES:
            raise RecordRejectedError(
                Reason.ITEM_TOO_LARGE, f"item of {size} bytes exceeds DynamoDB's 400 KB"
            )
        return item

    def _natural_partition(self, record: dict[str, Any]) -> str:
        parts = [self.dataset.name]
        for name in self.dataset.natural_key:
            value = record.get(name)
            if type(value) is str and value:
                parts.append(value.replace("%", "%25").replace("#", "%23"))
            elif type(value) in (int, Decimal):
                parts.append(str(value))
            else:
                raise RecordRejectedError(
                    Reason.NATURAL_KEY_INVALID,
                    f"natural key field {name!r} must be a non-empty string or number",
                )
        partition = "#".join(parts)
        if _utf8_len(partition) > MAX_KEY_BYTES:
            raise RecordRejectedError(Reason.NATURAL_KEY_INVALID, "natural key longer than 2048 bytes")
        return partition
