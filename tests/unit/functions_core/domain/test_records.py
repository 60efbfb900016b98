"""Exact conversion of records to DynamoDB attribute values, and every reason a record is unstorable."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from functions.core.domain.datasets import Dataset, DatasetRegistry
from functions.core.domain.readers import NonFinite, decode_json
from functions.core.domain.reasons import Reason
from functions.core.domain.records import (
    MAX_NESTING,
    ItemBuilder,
    Provenance,
    RecordRejectedError,
    to_attribute,
)

PROVENANCE = Provenance(bucket="b", key="k.jsonl", sequencer="0" * 63 + "1", event_id="e", ingested_at="t")


def nested(depth: int) -> dict[str, Any]:
    record: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        record = {"n": record}
    return record


def test_the_tutorial_record_converts_to_string_attributes() -> None:
    record = {"Name": "John Doe", "Role": "Developer", "Email": "john.doe@example.com"}

    attribute, _ = to_attribute(record)

    assert attribute == {
        "M": {"Name": {"S": "John Doe"}, "Role": {"S": "Developer"}, "Email": {"S": "john.doe@example.com"}}
    }


def test_numbers_are_exact_decimals_never_floats() -> None:
    record = decode_json(
        '{"pi": 3.141592653589793238462643383279502884, "big": 12345678901234567890123, '
        '"tiny": 1e-130, "neg": -0.1, "zero": 0.0}'
    )

    attribute, _ = to_attribute(record)

    assert attribute["M"]["pi"] == {"N": "3.141592653589793238462643383279502884"}
    assert attribute["M"]["big"] == {"N": "12345678901234567890123"}
    assert attribute["M"]["tiny"] == {"N": "1E-130"}
    assert attribute["M"]["neg"] == {"N": "-0.1"}
    assert attribute["M"]["zero"] == {"N": "0"}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.text()
    | st.integers(min_value=-(10**37), max_value=10**37)
    | st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**20), max_value=10**20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def canonical(attribute: dict[str, Any]) -> Any:
    """An attribute value with numbers compared by value, not by their spelling (`1E+1` == `10`)."""
    ((tag, value),) = attribute.items()
    if tag == "N":
        return tag, Decimal(value)
    if tag == "M":
        return tag, {name: canonical(child) for name, child in value.items()}
    if tag == "L":
        return tag, [canonical(child) for child in value]
    return tag, value


@given(st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=6))
def test_conversion_round_trips_through_boto3s_deserializer(record: dict[str, Any]) -> None:
    attribute, _ = to_attribute(record)

    assert TypeDeserializer().deserialize(attribute) == record
    # The same attribute types and values as boto3's own serializer produces.
    assert canonical(attribute) == canonical(TypeSerializer().serialize(record))


REJECTIONS = [
    ("not an object", [1, 2], Reason.NOT_AN_OBJECT),
    ("a string", "text", Reason.NOT_AN_OBJECT),
    ("NaN", {"x": NonFinite("NaN")}, Reason.NON_FINITE_NUMBER),
    ("-Infinity in a list", {"x": [NonFinite("-Infinity")]}, Reason.NON_FINITE_NUMBER),
    (
        "39 significant digits",
        {"x": Decimal("1.23456789012345678901234567890123456789")},
        Reason.NUMBER_TOO_PRECISE,
    ),
    ("39-digit integer", {"x": 123456789012345678901234567890123456789}, Reason.NUMBER_TOO_PRECISE),
    ("below 1E-130", {"x": Decimal("1E-131")}, Reason.NUMBER_OUT_OF_RANGE),
    ("above 9.99E+125", {"x": Decimal("1E+126")}, Reason.NUMBER_OUT_OF_RANGE),
    ("empty attribute name", {"": 1}, Reason.EMPTY_ATTRIBUTE_NAME),
    ("empty nested attribute name", {"a": {"": 1}}, Reason.EMPTY_ATTRIBUTE_NAME),
    ("nesting one level too deep", nested(MAX_NESTING), Reason.NESTING_TOO_DEEP),
    ("item over 400 KB", {"blob": "x" * 410_000}, Reason.ITEM_TOO_LARGE),
    ("multi-byte text over 400 KB", {"blob": "é" * 205_000}, Reason.ITEM_TOO_LARGE),
]


@pytest.mark.parametrize(("record", "reason"), [c[1:] for c in REJECTIONS], ids=[c[0] for c in REJECTIONS])
def test_unstorable_records_are_rejected_with_their_reason(record: Any, reason: Reason) -> None:
    builder = ItemBuilder(Dataset(name="default"), PROVENANCE)

    with pytest.raises(RecordRejectedError) as rejected:
        builder.build(1, record)

    assert rejected.value.reason is reason


@pytest.mark.parametrize(
    "record",
    [
        nested(MAX_NESTING - 1),  # the `data` map itself is the first level
        {"x": Decimal("9.9999999999999999999999999999999999999E+125")},
        {"x": 10**125},
        {"x": 10**40},  # one significant digit: storable
        {"blob": "x" * 400_000},
    ],
    ids=["deepest allowed", "largest number", "1E+125 integer", "1E+40 integer", "item just under 400 KB"],
)
def test_records_at_the_limits_are_accepted(record: Any) -> None:
    item = ItemBuilder(Dataset(name="default"), PROVENANCE).build(1, record)

    assert item["data"] == to_attribute(record)[0]


def test_schema_violations_are_rejected_with_the_first_violation() -> None:
    people = DatasetRegistry.load().for_key("people/x.jsonl")
    builder = ItemBuilder(people, PROVENANCE)

    with pytest.raises(RecordRejectedError) as rejected:
        builder.build(1, {"Name": "Ann", "Role": "Dev", "Email": "not-an-email"})

    assert rejected.value.reason is Reason.SCHEMA_VIOLATION
    assert "Email" in rejected.value.detail


@pytest.mark.parametrize("email", [None, "", ["a@b.c"], True], ids=["missing", "empty", "list", "bool"])
def test_natural_key_fields_must_be_non_empty_strings_or_numbers(email: Any) -> None:
    dataset = Dataset(name="people", prefix="people/", natural_key=("Email",))
    record = {"Name": "Ann"} if email is None else {"Name": "Ann", "Email": email}

    with pytest.raises(RecordRejectedError) as rejected:
        ItemBuilder(dataset, PROVENANCE).build(1, record)

    assert rejected.value.reason is Reason.NATURAL_KEY_INVALID


def test_natural_key_parts_are_escaped_so_different_keys_never_collide() -> None:
    dataset = Dataset(name="d", prefix="d/", natural_key=("a", "b"))
    builder = ItemBuilder(dataset, PROVENANCE)

    first = builder.build(1, {"a": "x#y", "b": "z"})["pk"]["S"]
    second = builder.build(2, {"a": "x", "b": "y#z"})["pk"]["S"]

    assert first != second
    assert (first, second) == ("d#x%23y#z", "d#x#y%23z")


def test_default_items_are_keyed_by_their_shard_partition_and_padded_position() -> None:
    builder = ItemBuilder(Dataset(name="default"), PROVENANCE)
    item = builder.build(42, {"a": 1})

    # Position 42 is in the second block of 25 positions: shard 1.
    assert (item["pk"], item["sk"], item["position"]) == (
        {"S": "k.jsonl#01"},
        {"S": "000000000042"},
        {"N": "42"},
    )
    # Blocks go round-robin over the 64 shards, then start over.
    assert [builder.build(p, {})["pk"]["S"] for p in (1, 25, 26, 1600, 1601)] == [
        "k.jsonl#00",
        "k.jsonl#00",
        "k.jsonl#01",
        "k.jsonl#63",
        "k.jsonl#00",
    ]


@pytest.mark.parametrize(
    "record",
    [
        decode_json('{"x": "\\ud800"}'),
        decode_json('{"x": ["ok", "tail \\udfff"]}'),
        decode_json('{"\\udc00": 1}'),
        decode_json('{"a": {"b": "\\ud83d"}}'),
    ],
    ids=["value", "in a list", "attribute name", "nested"],
)
def test_a_lone_surrogate_is_rejected_because_it_has_no_utf8_encoding(record: Any) -> None:
    # JSON's \u escapes can name half of a UTF-16 pair; DynamoDB stores UTF-8, which cannot hold it.
    with pytest.raises(RecordRejectedError) as rejected:
        ItemBuilder(Dataset(name="default"), PROVENANCE).build(1, record)

    assert rejected.value.reason is Reason.LONE_SURROGATE
    assert "\\ud" in rejected.value.detail


def test_a_surrogate_pair_is_one_character_and_stored() -> None:
    record = decode_json('{"x": "\\ud83d\\ude00"}')

    attribute, size = to_attribute(record)

    assert attribute == {"M": {"x": {"S": "\U0001f600"}}}
    assert size == 3 + 1 + 1 + 4  # map overhead, name, name separator, 4 UTF-8 bytes
