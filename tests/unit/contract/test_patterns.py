"""EventBridge pattern semantics (eventpipe.contract.patterns), table-driven from the AWS documentation.

Each case states what AWS does; moto gets several of these wrong (aws-facts gap 9), which is why
local mode and `eventpipe pattern test` rely on this module.
"""

from __future__ import annotations

import itertools
import json
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from eventpipe.contract.patterns import (
    InvalidPatternError,
    compile_pattern,
    flatten_event,
    matches,
    validate_pattern,
)

S3_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2021-11-12T00:00:00Z",
    "region": "ca-central-1",
    "resources": ["arn:aws:s3:::amzn-s3-demo-bucket1"],
    "detail": {
        "version": "0",
        "bucket": {"name": "amzn-s3-demo-bucket1"},
        "object": {"key": "in/data.json", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184"},
        "source-ip-address": "10.0.0.33",
        "reason": "PutObject",
    },
}

RECORDS_EVENT: dict[str, Any] = {
    "records": [
        {"type": "a", "id": 1, "tags": ["x", "y"]},
        {"type": "b", "id": 2, "tags": ["z"]},
    ],
    "count": 300,
    "ratio": 0.25,
    "flag": True,
    "nothing": None,
    "empty": "",
    "nested": {"inner": {"c1": 100}},
    "empty_list": [],
    "mixed": ["text", 7],
}

# Element 0 has `zz` and `a-flag`, element 1 (type b) has neither.
SPARSE_RECORDS: dict[str, Any] = {"records": [{"type": "a", "zz": 1, "a-flag": True}, {"type": "b"}]}

# (case id, pattern, event, AWS's answer)
MATCH_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # exact values, AND across fields, OR within a field
    ("exact string", {"source": ["aws.s3"]}, S3_EVENT, True),
    ("exact string is case-sensitive", {"source": ["AWS.S3"]}, S3_EVENT, False),
    ("values of one field are OR-ed", {"source": ["aws.ec2", "aws.s3"]}, S3_EVENT, True),
    ("fields are AND-ed", {"source": ["aws.s3"], "detail-type": ["Object Deleted"]}, S3_EVENT, False),
    ("nested field", {"detail": {"bucket": {"name": ["amzn-s3-demo-bucket1"]}}}, S3_EVENT, True),
    ("missing field never equals a value", {"detail": {"missing": ["x"]}}, S3_EVENT, False),
    ("number equals number", {"count": [300]}, RECORDS_EVENT, True),
    ("numbers compare as numbers: 3.0e2 == 300", {"count": [3.0e2]}, RECORDS_EVENT, True),
    ("string '300' is not the number 300", {"count": ["300"]}, RECORDS_EVENT, False),
    ("number 5 is not the string '5'", {"detail": {"object": {"size": ["5"]}}}, S3_EVENT, False),
    ("true matches true", {"flag": [True]}, RECORDS_EVENT, True),
    ("true is not 1", {"flag": [1]}, RECORDS_EVENT, False),
    ("null matches null", {"nothing": [None]}, RECORDS_EVENT, True),
    ("null does not match a missing field", {"absent": [None]}, RECORDS_EVENT, False),
    ("empty string matches empty string", {"empty": [""]}, RECORDS_EVENT, True),
    ("empty string is not null", {"nothing": [""]}, RECORDS_EVENT, False),
    # arrays in the event
    ("any element of an event array", {"resources": ["arn:aws:s3:::amzn-s3-demo-bucket1"]}, S3_EVENT, True),
    ("array of scalars, nested", {"records": {"tags": ["z"]}}, RECORDS_EVENT, True),
    ("array of objects: one element matches", {"records": {"type": ["b"]}}, RECORDS_EVENT, True),
    ("array of objects: same element", {"records": {"type": ["b"], "id": [2]}}, RECORDS_EVENT, True),
    (
        "array of objects: never across elements",
        {"records": {"type": ["b"], "id": [1]}},
        RECORDS_EVENT,
        False,
    ),
    (
        "array of objects: inner array, same element",
        {"records": {"type": ["a"], "tags": ["y"]}},
        RECORDS_EVENT,
        True,
    ),
    (
        "array of objects: inner array, other element",
        {"records": {"type": ["b"], "tags": ["y"]}},
        RECORDS_EVENT,
        False,
    ),
    ("mixed array types", {"mixed": [7]}, RECORDS_EVENT, True),
    # prefix / suffix / equals-ignore-case / wildcard
    ("prefix", {"time": [{"prefix": "2021-11"}]}, S3_EVENT, True),
    ("prefix miss", {"time": [{"prefix": "2017-10"}]}, S3_EVENT, False),
    ("prefix only on strings", {"count": [{"prefix": "3"}]}, RECORDS_EVENT, False),
    ("prefix ignore case", {"source": [{"prefix": {"equals-ignore-case": "AWS."}}]}, S3_EVENT, True),
    ("suffix", {"detail": {"object": {"key": [{"suffix": ".json"}]}}}, S3_EVENT, True),
    ("suffix is case-sensitive", {"detail": {"object": {"key": [{"suffix": ".JSON"}]}}}, S3_EVENT, False),
    (
        "suffix ignore case",
        {"detail": {"object": {"key": [{"suffix": {"equals-ignore-case": ".JSON"}}]}}},
        S3_EVENT,
        True,
    ),
    ("equals-ignore-case", {"detail-type": [{"equals-ignore-case": "object created"}]}, S3_EVENT, True),
    (
        "equals-ignore-case is whole-value",
        {"detail-type": [{"equals-ignore-case": "object"}]},
        S3_EVENT,
        False,
    ),
    ("wildcard", {"detail": {"object": {"key": [{"wildcard": "in/*.json"}]}}}, S3_EVENT, True),
    ("wildcard is anchored", {"detail": {"object": {"key": [{"wildcard": "in/*.js"}]}}}, S3_EVENT, False),
    ("wildcard star matches empty", {"source": [{"wildcard": "aws.s3*"}]}, S3_EVENT, True),
    ("wildcard escaped star is literal", {"k": [{"wildcard": "a\\*b"}]}, {"k": "a*b"}, True),
    ("wildcard escaped star is not a wildcard", {"k": [{"wildcard": "a\\*b"}]}, {"k": "axxb"}, False),
    ("wildcard escaped backslash", {"k": [{"wildcard": "a\\\\*"}]}, {"k": "a\\tail"}, True),
    ("wildcard regex characters are literal", {"k": [{"wildcard": "a.c*"}]}, {"k": "abcd"}, False),
    # anything-but
    ("anything-but string", {"detail": {"reason": [{"anything-but": "DeleteObject"}]}}, S3_EVENT, True),
    (
        "anything-but string excluded",
        {"detail": {"reason": [{"anything-but": "PutObject"}]}},
        S3_EVENT,
        False,
    ),
    ("anything-but list", {"source": [{"anything-but": ["aws.ec2", "aws.s3"]}]}, S3_EVENT, False),
    ("anything-but number", {"count": [{"anything-but": 100}]}, RECORDS_EVENT, True),
    ("anything-but numbers compare as numbers", {"count": [{"anything-but": [3.0e2]}]}, RECORDS_EVENT, False),
    ("anything-but needs the field", {"absent": [{"anything-but": "x"}]}, RECORDS_EVENT, False),
    (
        "anything-but on an event array: any element",
        {"records": {"type": [{"anything-but": "a"}]}},
        RECORDS_EVENT,
        True,
    ),
    ("anything-but prefix", {"region": [{"anything-but": {"prefix": "us-"}}]}, S3_EVENT, True),
    ("anything-but prefix excluded", {"region": [{"anything-but": {"prefix": "ca-"}}]}, S3_EVENT, False),
    (
        "anything-but suffix",
        {"detail": {"object": {"key": [{"anything-but": {"suffix": ".png"}}]}}},
        S3_EVENT,
        True,
    ),
    (
        "anything-but suffix excluded",
        {"detail": {"object": {"key": [{"anything-but": {"suffix": ".json"}}]}}},
        S3_EVENT,
        False,
    ),
    (
        "anything-but ignore case",
        {"source": [{"anything-but": {"equals-ignore-case": ["AWS.S3"]}}]},
        S3_EVENT,
        False,
    ),
    (
        "anything-but wildcard",
        {"detail": {"object": {"key": [{"anything-but": {"wildcard": "*/lib/*"}}]}}},
        S3_EVENT,
        True,
    ),
    (
        "anything-but wildcard excluded",
        {"detail": {"object": {"key": [{"anything-but": {"wildcard": "in/*"}}]}}},
        S3_EVENT,
        False,
    ),
    # numeric
    ("numeric range", {"count": [{"numeric": [">", 0, "<=", 300]}]}, RECORDS_EVENT, True),
    ("numeric open top", {"count": [{"numeric": [">", 0, "<", 300]}]}, RECORDS_EVENT, False),
    ("numeric equals with exponent", {"count": [{"numeric": ["=", 3.0e2]}]}, RECORDS_EVENT, True),
    ("numeric fraction", {"ratio": [{"numeric": [">=", 0.25]}]}, RECORDS_EVENT, True),
    ("numeric only on numbers", {"empty": [{"numeric": [">", -1]}]}, RECORDS_EVENT, False),
    ("numeric ignores booleans", {"flag": [{"numeric": [">", 0]}]}, RECORDS_EVENT, False),
    # exists
    ("exists true", {"detail": {"reason": [{"exists": True}]}}, S3_EVENT, True),
    ("exists true on missing", {"detail": {"deletion-type": [{"exists": True}]}}, S3_EVENT, False),
    ("exists false on missing", {"detail": {"deletion-type": [{"exists": False}]}}, S3_EVENT, True),
    ("exists false on present", {"detail": {"reason": [{"exists": False}]}}, S3_EVENT, False),
    ("exists true on null (a value)", {"nothing": [{"exists": True}]}, RECORDS_EVENT, True),
    (
        "exists false on an object (not a leaf)",
        {"nested": {"inner": [{"exists": False}]}},
        RECORDS_EVENT,
        True,
    ),
    (
        "exists true on an object (not a leaf)",
        {"nested": {"inner": [{"exists": True}]}},
        RECORDS_EVENT,
        False,
    ),
    ("exists false on an empty array", {"empty_list": [{"exists": False}]}, RECORDS_EVENT, True),
    (
        "exists false: present in any array element",
        {"records": {"id": [{"exists": False}]}},
        RECORDS_EVENT,
        False,
    ),
    ("replay opt-out matches a live event", {"replay-name": [{"exists": False}]}, S3_EVENT, True),
    (
        "replay opt-out skips a replayed event",
        {"replay-name": [{"exists": False}]},
        {**S3_EVENT, "replay-name": "r1"},
        False,
    ),
    ("exists false or a value", {"nothing": [{"exists": False}, None]}, RECORDS_EVENT, True),
    # exists inside arrays of objects: AWS walks fields in name order; an absence is judged within
    # the array elements the fields before it picked.
    (
        "exists false in the picked element",
        {"records": {"type": ["b"], "zz": [{"exists": False}]}},
        SPARSE_RECORDS,
        True,
    ),
    (
        "exists false, present in the picked element",
        {"records": {"type": ["a"], "zz": [{"exists": False}]}},
        SPARSE_RECORDS,
        False,
    ),
    (
        "exists false judged before any pick",
        {"records": {"a-flag": [{"exists": False}], "type": ["b"]}},
        SPARSE_RECORDS,
        False,
    ),
    (
        "exists true must share the element",
        {"records": {"type": ["b"], "zz": [{"exists": True}]}},
        SPARSE_RECORDS,
        False,
    ),
    # cidr and IP addresses
    ("cidr v4", {"detail": {"source-ip-address": [{"cidr": "10.0.0.0/24"}]}}, S3_EVENT, True),
    ("cidr v4 miss", {"detail": {"source-ip-address": [{"cidr": "10.0.1.0/24"}]}}, S3_EVENT, False),
    ("cidr v6", {"ip": [{"cidr": "2001:db8::/32"}]}, {"ip": "2001:db8::1"}, True),
    ("cidr ignores non-addresses", {"ip": [{"cidr": "10.0.0.0/8"}]}, {"ip": "not-an-ip"}, False),
    ("IP strings compare as addresses", {"ip": ["::1"]}, {"ip": "0:0:0:0:0:0:0:1"}, True),
    # $or
    (
        "$or: one alternative",
        {"$or": [{"source": ["aws.ec2"]}, {"detail-type": ["Object Created"]}]},
        S3_EVENT,
        True,
    ),
    ("$or: none", {"$or": [{"source": ["aws.ec2"]}, {"detail-type": ["Object Deleted"]}]}, S3_EVENT, False),
    (
        "$or AND-ed with other fields",
        {"source": ["aws.ec2"], "$or": [{"region": ["ca-central-1"]}, {"account": ["111122223333"]}]},
        S3_EVENT,
        False,
    ),
    (
        "$or nested in an object",
        {"detail": {"$or": [{"reason": ["CopyObject"]}, {"object": {"size": [{"numeric": ["<", 10]}]}}]}},
        S3_EVENT,
        True,
    ),
    (
        "$or nested inside $or",
        {"$or": [{"source": ["x"]}, {"$or": [{"region": ["y"]}, {"account": ["111122223333"]}]}]},
        S3_EVENT,
        True,
    ),
]


@pytest.mark.parametrize(
    ("pattern", "event", "expected"), [c[1:] for c in MATCH_CASES], ids=[c[0] for c in MATCH_CASES]
)
def test_matches_like_eventbridge(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, event) is expected


@pytest.mark.parametrize(
    ("pattern", "event", "expected"), [c[1:] for c in MATCH_CASES], ids=[c[0] for c in MATCH_CASES]
)
def test_compiled_pattern_and_json_text_agree(
    pattern: dict[str, Any], event: dict[str, Any], expected: bool
) -> None:
    compiled_from_text = compile_pattern(json.dumps(pattern))
    assert compiled_from_text.matches(flatten_event(event)) is expected
    assert compiled_from_text.explain(event).matched is expected


# (case id, pattern, words of AWS's reason)
INVALID_CASES: list[tuple[str, Any, str]] = [
    ("not an object", ["source"], "Filter is not an object"),
    ("leaf not an array", {"source": "aws.s3"}, '"source" must be an object or an array'),
    ("empty array", {"source": []}, "Empty arrays are not allowed"),
    ("empty object", {"detail": {}}, "Empty objects are not allowed"),
    (
        "nested array value",
        {"source": [["aws.s3"]]},
        "Match value must be String, number, true, false, or null",
    ),
    ("unknown operator", {"source": [{"prefixx": "aws"}]}, "Unrecognized match type prefixx"),
    ("two operators in one object", {"source": [{"prefix": "a", "suffix": "b"}]}, "Only one key allowed"),
    ("empty match expression", {"source": [{}]}, "Match expression name not found"),
    ("prefix not a string", {"source": [{"prefix": 1}]}, "prefix match pattern must be a string"),
    ("suffix not a string", {"source": [{"suffix": None}]}, "suffix match pattern must be a string"),
    ("prefix unknown inner", {"source": [{"prefix": {"wildcard": "a*"}}]}, "Unsupported prefix pattern"),
    ("equals-ignore-case not a string", {"source": [{"equals-ignore-case": 5}]}, "must be a string"),
    (
        "wildcard consecutive stars",
        {"key": [{"wildcard": "a**b"}]},
        "Consecutive wildcard characters at pos 1",
    ),
    ("wildcard bad escape", {"key": [{"wildcard": "a\\b"}]}, "Invalid escape character at pos 1"),
    ("wildcard not a string", {"key": [{"wildcard": ["a*"]}]}, "wildcard match pattern must be a string"),
    ("numeric lower > upper", {"n": [{"numeric": [">", 10, "<", 5]}]}, "Bottom must be less than top"),
    ("numeric lower == upper", {"n": [{"numeric": [">=", 5, "<=", 5]}]}, "Bottom must be less than top"),
    (
        "numeric upper bound first",
        {"n": [{"numeric": ["<", 5, ">", 1]}]},
        "Too many elements in numeric expression",
    ),
    ("numeric second op not upper", {"n": [{"numeric": [">", 1, ">", 5]}]}, "Bad numeric range operator: >"),
    ("numeric unknown op", {"n": [{"numeric": ["!=", 5]}]}, "Unrecognized numeric range operator: !="),
    ("numeric value not a number", {"n": [{"numeric": [">", "5"]}]}, "Value of > must be numeric"),
    ("numeric value is a boolean", {"n": [{"numeric": ["=", True]}]}, "Value of = must be numeric"),
    ("numeric missing value", {"n": [{"numeric": [">"]}]}, "Value of > must be numeric"),
    ("numeric not an array", {"n": [{"numeric": 5}]}, "Value of numeric must be an array."),
    ("numeric empty", {"n": [{"numeric": []}]}, "Invalid member in numeric match"),
    ("numeric too many terms", {"n": [{"numeric": [">", 1, "<", 5, "<", 6]}]}, "Too many terms"),
    (
        "exists not boolean",
        {"n": [{"exists": "false"}]},
        "exists match pattern must be either true or false.",
    ),
    ("anything-but null", {"n": [{"anything-but": None}]}, "Value of anything-but must be an array"),
    ("anything-but mixed list", {"n": [{"anything-but": ["a", 1]}]}, "mixed type is not supported"),
    ("anything-but empty list", {"n": [{"anything-but": []}]}, "mixed type is not supported"),
    (
        "anything-but list with null",
        {"n": [{"anything-but": ["a", None]}]},
        "start|null|boolean is not supported",
    ),
    (
        "anything-but unknown inner",
        {"n": [{"anything-but": {"numeric": [">", 1]}}]},
        "Unsupported anything-but pattern",
    ),
    (
        "anything-but empty prefix",
        {"n": [{"anything-but": {"prefix": ""}}]},
        "Null prefix/suffix not allowed",
    ),
    ("anything-but wildcard invalid", {"n": [{"anything-but": {"wildcard": "**"}}]}, "Consecutive wildcard"),
    ("cidr without prefix length", {"ip": [{"cidr": "10.0.0.1"}]}, "Malformed CIDR"),
    ("cidr nonsense", {"ip": [{"cidr": "10.0.0.0/33"}]}, "Nonstandard IP address"),
    ("$or not an array", {"$or": {"a": ["b"]}}, "It must be an Array followed with $or."),
    ("$or with one object", {"$or": [{"a": ["b"]}]}, "at least 2 Objects in $or relationship"),
    ("$or with a non-object", {"$or": [{"a": ["b"]}, "c"]}, "Only JSON object is allowed in array of $or"),
    ("operator name as field inside $or", {"$or": [{"prefix": ["a"]}, {"b": ["c"]}]}, "reserved field name"),
    ("invalid JSON text", "{not json", "Filter is not valid JSON"),
]


@pytest.mark.parametrize(
    ("pattern", "reason"), [c[1:] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES]
)
def test_rejects_invalid_patterns_with_aws_reason(pattern: Any, reason: str) -> None:
    with pytest.raises(InvalidPatternError) as caught:
        validate_pattern(pattern)
    message = str(caught.value)
    assert message.startswith("Event pattern is not valid. Reason: ")
    assert reason in message
    assert isinstance(caught.value, ValueError)


def test_error_names_the_offending_field() -> None:
    with pytest.raises(InvalidPatternError) as caught:
        validate_pattern({"detail": {"object": {"key": [{"wildcard": "a**"}]}}})
    assert caught.value.path == ("detail", "object", "key")
    assert "detail.object.key" in str(caught.value)


def test_matching_an_invalid_pattern_raises() -> None:
    with pytest.raises(InvalidPatternError):
        matches({"source": [{"numeric": [">", 5, "<", 1]}]}, S3_EVENT)


def test_explain_names_the_failing_field() -> None:
    explanation = compile_pattern({"source": ["aws.s3"], "detail-type": ["Object Deleted"]}).explain(S3_EVENT)
    assert not explanation.matched
    assert [m.path for m in explanation.mismatches] == ["detail-type"]
    assert '"Object Created"' in explanation.summary()


def test_explain_reports_fields_split_across_array_elements() -> None:
    explanation = compile_pattern({"records": {"type": ["b"], "id": [1]}}).explain(RECORDS_EVENT)
    assert not explanation.matched
    assert "records.id, records.type each match, but not within one element" in explanation.summary()


# --- properties ----------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.text(max_size=12),
)
field_names = st.text(alphabet=string.ascii_lowercase + "-", min_size=1, max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(field_names, children, max_size=4),
    max_leaves=12,
)
events = st.dictionaries(field_names, json_values, min_size=1, max_size=6)


def _leaf_paths(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (path, leaf) of an event, descending into objects that are not inside arrays."""
    if isinstance(value, dict):
        return [leaf for key, child in value.items() for leaf in _leaf_paths(child, (*path, key))]
    if isinstance(value, list):
        return []
    return [(path, value)]


def _pattern_for(path: tuple[str, ...], values: list[Any]) -> dict[str, Any]:
    pattern: dict[str, Any] = {path[-1]: values}
    for key in reversed(path[:-1]):
        pattern = {key: pattern}
    return pattern


@given(events, st.data())
def test_an_event_matches_a_pattern_built_from_its_own_leaves(
    event: dict[str, Any], data: st.DataObject
) -> None:
    leaves = _leaf_paths(event)
    if not leaves:
        return
    path, value = data.draw(st.sampled_from(leaves))
    assert matches(_pattern_for(path, [value]), event)
    # ... and anything-but that value (same type) does not, unless it is null/bool (not allowed there).
    if isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        assert not matches(_pattern_for(path, [{"anything-but": value}]), event)


@given(events, field_names)
def test_exists_true_and_false_are_complements(event: dict[str, Any], name: str) -> None:
    present = matches({name: [{"exists": True}]}, event)
    absent = matches({name: [{"exists": False}]}, event)
    assert present != absent


@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.one_of(st.integers(min_value=-(10**9), max_value=10**9), st.floats(min_value=-1e9, max_value=1e9)),
)
def test_numeric_range_is_the_arithmetic_comparison(low: float, high: float, value: float) -> None:
    if low >= high:
        with pytest.raises(InvalidPatternError, match="Bottom must be less than top"):
            validate_pattern({"n": [{"numeric": [">=", low, "<", high]}]})
        return
    assert matches({"n": [{"numeric": [">=", low, "<", high]}]}, {"n": value}) is (low <= value < high)


@given(st.text(max_size=20), st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=20))
def test_wildcard_replacing_any_slice_with_a_star_still_matches(text: str, start: int, length: int) -> None:
    start = min(start, len(text))
    escaped_head = text[:start].replace("\\", "\\\\").replace("*", "\\*")
    escaped_tail = text[start + length :].replace("\\", "\\\\").replace("*", "\\*")
    assert matches({"k": [{"wildcard": f"{escaped_head}*{escaped_tail}"}]}, {"k": text})
    assert matches({"k": [{"prefix": text[:start]}]}, {"k": text})
    assert matches({"k": [{"suffix": text[start:]}]}, {"k": text})


def test_aws_reason_is_the_text_after_the_reason_prefix() -> None:
    """Wrappers that add AWS's prefix themselves (moto's InvalidEventPatternException) use aws_reason."""
    with pytest.raises(InvalidPatternError) as caught:
        validate_pattern({"source": [{"prefixx": "aws"}]})
    assert caught.value.aws_reason == "Unrecognized match type prefixx at [Path: source]"
    assert str(caught.value) == f"Event pattern is not valid. Reason: {caught.value.aws_reason}"


# --- differential check of array consistency -----------------------------------------------------
# Reference semantics, written independently of the matcher: a pattern without `exists: false`
# matches an event iff it matches one "world" of it, where every array is replaced by one of its
# elements (an empty array by nothing). Ruling out picks from different elements of one array is
# exactly what choosing one element per array does.

_MISSING = object()


def _worlds(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        keys = list(value)
        for combination in itertools.product(*(list(_worlds(value[key])) for key in keys)):
            yield {key: item for key, item in zip(keys, combination, strict=True) if item is not _MISSING}
    elif isinstance(value, list):
        if not value:
            yield _MISSING
        for element in value:
            yield from _worlds(element)
    else:
        yield value


def _same_json(left: Any, right: Any) -> bool:
    def is_number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if is_number(left) and is_number(right):
        return bool(left == right)
    return type(left) is type(right) and left == right


def _reference_match(pattern: dict[str, Any], world: Any) -> bool:
    for key, condition in pattern.items():
        value = world.get(key, _MISSING) if isinstance(world, dict) else _MISSING
        if isinstance(condition, dict):
            if not _reference_match(condition, value):
                return False
        elif value is _MISSING or isinstance(value, dict) or not any(_same_json(value, c) for c in condition):
            return False
    return True


def _merge(pattern: dict[str, Any], path: tuple[str, ...], values: list[Any]) -> None:
    node = pattern
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = values


# Few keys and values, so that arrays of objects share field names and values collide.
small_scalars = st.sampled_from([0, 1, "x", "y", True, None])
small_keys = st.sampled_from(["a", "b", "c"])
small_objects = st.dictionaries(
    small_keys,
    small_scalars
    | st.lists(small_scalars, max_size=2)
    | st.dictionaries(small_keys, small_scalars, max_size=2),
    min_size=1,
    max_size=3,
)
array_heavy_events = st.one_of(
    st.fixed_dictionaries(
        {"r": st.lists(small_objects, min_size=2, max_size=3)}, optional={"a": small_scalars}
    ),
    st.dictionaries(
        small_keys,
        st.recursive(
            small_scalars,
            lambda children: (
                st.lists(children, max_size=3) | st.dictionaries(small_keys, children, max_size=3)
            ),
            max_leaves=10,
        ),
        min_size=1,
        max_size=3,
    ),
)


@given(array_heavy_events, st.data())
def test_array_consistency_agrees_with_the_one_element_per_array_reference(
    event: dict[str, Any], data: st.DataObject
) -> None:
    worlds = list(itertools.islice(_worlds(event), 2001))
    assume(len(worlds) <= 2000)
    # Leaves from up to three worlds: patterns that mix array elements must not match.
    drawn = data.draw(st.lists(st.sampled_from(worlds), min_size=1, max_size=3))
    leaves = [leaf for world in drawn for leaf in _leaf_paths(world)]
    assume(leaves)
    chosen = data.draw(
        st.lists(st.sampled_from(leaves), min_size=1, max_size=3, unique_by=lambda leaf: leaf[0])
    )
    pattern: dict[str, Any] = {}
    for path, value in chosen:
        if any(path[: len(other)] == other and path != other for other, _ in chosen):
            continue  # a leaf in one world is an object in another: keep the shorter path only
        use_own_value = data.draw(st.integers(0, 3)) > 0
        _merge(pattern, path, [value] if use_own_value else [data.draw(small_scalars)])
    expected = any(_reference_match(pattern, candidate) for candidate in worlds)
    assert matches(pattern, event) is expected
