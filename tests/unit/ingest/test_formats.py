"""Streaming readers: every supported format, its edge cases, and that reading really streams."""

from __future__ import annotations

import gzip
import io
import json
from decimal import Decimal
from hashlib import sha256
from typing import Any

import pytest

from functions.core.formats import (
    BLANK,
    CHUNK_BYTES,
    RAW_PREFIX_BYTES,
    Format,
    Malformed,
    NonFinite,
    ObjectFormat,
    Reason,
    UnreadableObjectError,
    detect_format,
    read_records,
)

JSONL = ObjectFormat(Format.JSON_LINES, gzip=False)
JSON = ObjectFormat(Format.JSON, gzip=False)
LIMIT = 1024 * 1024


def read(data: bytes, fmt: ObjectFormat = JSONL, limit: int = LIMIT) -> list[tuple[int, Any]]:
    return list(read_records(io.BytesIO(data), fmt, max_json_bytes=limit))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("sample.json", ObjectFormat(Format.JSON, False)),
        ("a/b.JSON", ObjectFormat(Format.JSON, False)),
        ("a.jsonl", ObjectFormat(Format.JSON_LINES, False)),
        ("a.ndjson", ObjectFormat(Format.JSON_LINES, False)),
        ("a.json.gz", ObjectFormat(Format.JSON, True)),
        ("a.jsonl.gz", ObjectFormat(Format.JSON_LINES, True)),
        ("a.ndjson.gz", ObjectFormat(Format.JSON_LINES, True)),
        ("a.csv", None),
        ("a.gz", None),
    ],
)
def test_format_follows_the_suffix(key: str, expected: ObjectFormat | None) -> None:
    assert detect_format(key) == expected


def test_json_object_is_one_record() -> None:
    assert read(b'{"Name": "John Doe"}', JSON) == [(1, {"Name": "John Doe"})]


def test_json_array_yields_each_element_at_its_position() -> None:
    assert read(b'[{"a": 1}, {"a": 2}, 3]', JSON) == [(1, {"a": 1}), (2, {"a": 2}), (3, 3)]


def test_json_lines_skip_blank_lines_but_keep_line_numbers() -> None:
    data = b'{"a": 1}\n\n   \r\n{"a": 2}\r\n{"a": 3}'

    assert read(data) == [(1, {"a": 1}), (2, BLANK), (3, BLANK), (4, {"a": 2}), (5, {"a": 3})]


@pytest.mark.parametrize("fmt", [JSON, JSONL], ids=["json", "jsonl"])
def test_utf8_bom_is_accepted(fmt: ObjectFormat) -> None:
    assert read(b'\xef\xbb\xbf{"a": "\xc3\xa9"}\n', fmt) == [(1, {"a": "é"})]


@pytest.mark.parametrize(
    "fmt",
    [ObjectFormat(Format.JSON, True), ObjectFormat(Format.JSON_LINES, True)],
    ids=["json.gz", "jsonl.gz"],
)
def test_gzip_variants_decompress(fmt: ObjectFormat) -> None:
    assert read(gzip.compress(b'{"a": 1}\n'), fmt) == [(1, {"a": 1})]


def test_floats_are_parsed_as_exact_decimals() -> None:
    assert read(b'{"x": 0.1, "y": 1e400}') == [(1, {"x": Decimal("0.1"), "y": Decimal("1E+400")})]


def test_nan_and_infinity_become_markers_for_the_record_check() -> None:
    [(_, record)] = read(b'{"x": NaN, "y": -Infinity}')

    assert isinstance(record["x"], NonFinite)
    assert isinstance(record["y"], NonFinite)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"a": 1', Reason.INVALID_JSON),
        (b"not json", Reason.INVALID_JSON),
        (b'{"a": 1} {"b": 2}', Reason.INVALID_JSON),
        (b'{"a": "\xff"}', Reason.INVALID_UTF8),
    ],
)
def test_a_malformed_line_is_reported_and_reading_goes_on(line: bytes, reason: Reason) -> None:
    records = read(b'{"ok": 1}\n' + line + b'\n{"ok": 3}\n')

    assert (records[0], records[2]) == ((1, {"ok": 1}), (3, {"ok": 3}))
    position, malformed = records[1]
    assert position == 2
    assert isinstance(malformed, Malformed)
    assert (malformed.reason, malformed.raw) == (reason, line)


def test_a_line_longer_than_any_item_is_dropped_without_buffering_it() -> None:
    huge = b'{"a": "' + b"x" * (3 * CHUNK_BYTES) + b'"}'

    records = read(b'{"ok": 1}\n' + huge + b'\n{"ok": 3}\n')

    assert (records[0], records[2]) == ((1, {"ok": 1}), (3, {"ok": 3}))
    position, malformed = records[1]
    assert position == 2
    assert isinstance(malformed, Malformed)
    assert malformed.reason is Reason.LINE_TOO_LONG
    assert malformed.raw == huge[:RAW_PREFIX_BYTES]


@pytest.mark.parametrize(
    ("data", "fmt", "reason"),
    [
        (b"", JSONL, Reason.EMPTY_OBJECT),
        (b"\n\n  \n", JSONL, Reason.EMPTY_OBJECT),
        (b"", JSON, Reason.EMPTY_OBJECT),
        (b"[]", JSON, Reason.EMPTY_OBJECT),
        (b'{"a": ', JSON, Reason.INVALID_JSON),
        (b"\xff\xfe", JSON, Reason.INVALID_UTF8),
        (b"not gzip at all", ObjectFormat(Format.JSON_LINES, True), Reason.UNREADABLE_OBJECT),
        (b'[{"a": 1}, {"a": 2}]', ObjectFormat(Format.JSON, False), Reason.OBJECT_TOO_LARGE),
    ],
    ids=[
        "empty jsonl",
        "blank jsonl",
        "empty json",
        "empty array",
        "truncated json",
        "bad utf-8",
        "bad gzip",
        "json over the limit",
    ],
)
def test_unreadable_objects_raise_with_a_reason(data: bytes, fmt: ObjectFormat, reason: Reason) -> None:
    with pytest.raises(UnreadableObjectError) as unreadable:
        read(data, fmt, limit=10)

    assert unreadable.value.reason is reason


def test_truncated_gzip_keeps_the_records_read_before_the_break() -> None:
    # More than one read chunk, so records before the break are decoded before the break is hit.
    lines = b"".join(json.dumps({"n": n}).encode() + b"\n" for n in range(200_000))
    truncated = gzip.compress(lines)[:-2000]
    stream = read_records(io.BytesIO(truncated), ObjectFormat(Format.JSON_LINES, True), max_json_bytes=LIMIT)

    got: list[tuple[int, Any]] = []

    def drain() -> None:
        for record in stream:
            got.append(record)

    with pytest.raises(UnreadableObjectError) as unreadable:
        drain()

    assert unreadable.value.reason is Reason.UNREADABLE_OBJECT
    assert got[0] == (1, {"n": 0})
    assert len(got) > 1000


class CountingStream(io.RawIOBase):
    """A source that records how many bytes were pulled from it."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.pulled = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        self.pulled += len(chunk)
        return chunk


@pytest.mark.parametrize("compressed", [False, True], ids=["jsonl", "jsonl.gz"])
def test_json_lines_are_streamed_not_read_whole(compressed: bool) -> None:
    # Hash-derived padding keeps gzip from shrinking the object below one read chunk.
    lines = b"".join(
        json.dumps({"n": n, "pad": sha256(str(n).encode()).hexdigest()}).encode() + b"\n"
        for n in range(60_000)
    )
    data = gzip.compress(lines) if compressed else lines
    source = CountingStream(data)

    records = read_records(source, ObjectFormat(Format.JSON_LINES, compressed), max_json_bytes=LIMIT)  # type: ignore[arg-type]
    iterator = iter(records)
    first = next(iterator)

    assert first == (1, {"n": 0, "pad": sha256(b"0").hexdigest()})
    assert source.pulled <= 2 * CHUNK_BYTES < len(data)
    assert sum(1 for _ in iterator) == 60_000 - 1
