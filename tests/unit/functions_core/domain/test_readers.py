"""Streaming readers: every supported format, its edge cases, and that reading really streams."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import tracemalloc
import zlib
from decimal import Decimal
from hashlib import sha256
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core.domain.formats import Format, ObjectFormat, detect_format
from functions.core.domain.readers import (
    BLANK,
    CHUNK_BYTES,
    RAW_PREFIX_BYTES,
    Malformed,
    NonFinite,
    UnreadableObjectError,
    read_records,
)
from functions.core.domain.reasons import Reason

JSONL = ObjectFormat(Format.JSON_LINES, gzip=False)
JSON = ObjectFormat(Format.JSON, gzip=False)
LIMIT = 1024 * 1024


def read(data: bytes, fmt: ObjectFormat = JSONL) -> list[tuple[int, Any]]:
    return list(read_records(io.BytesIO(data), fmt))


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
        (b"not gzip at all", ObjectFormat(Format.JSON, True), Reason.UNREADABLE_OBJECT),
    ],
    ids=[
        "empty jsonl",
        "blank jsonl",
        "empty json",
        "empty array",
        "truncated json",
        "bad utf-8",
        "bad gzip",
        "bad json gzip",
    ],
)
def test_unreadable_objects_raise_with_a_reason(data: bytes, fmt: ObjectFormat, reason: Reason) -> None:
    with pytest.raises(UnreadableObjectError) as unreadable:
        read(data, fmt)

    assert unreadable.value.reason is reason


def test_truncated_gzip_keeps_the_records_read_before_the_break() -> None:
    # More than one read chunk, so records before the break are decoded before the break is hit.
    lines = b"".join(json.dumps({"n": n}).encode() + b"\n" for n in range(200_000))
    truncated = gzip.compress(lines)[:-2000]
    stream = read_records(io.BytesIO(truncated), ObjectFormat(Format.JSON_LINES, True))

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

    records = read_records(source, ObjectFormat(Format.JSON_LINES, compressed))  # type: ignore[arg-type]
    iterator = iter(records)
    first = next(iterator)

    assert first == (1, {"n": 0, "pad": sha256(b"0").hexdigest()})
    assert source.pulled <= 2 * CHUNK_BYTES < len(data)
    assert sum(1 for _ in iterator) == 60_000 - 1


# --- poison input: every record is a value or a Malformed, never an exception ------------------------

HUGE_INT = "1" + "0" * 5000  # beyond CPython's 4,300-digit limit for int() of a string
HUGE_EXPONENT = "1e99999999999999999999"  # beyond decimal's exponent range: InvalidOperation


def rejection(value: Any) -> Reason | None:
    """The reason the converter gives for a decoded record, None when it is storable."""
    from functions.core.domain.records import RecordRejectedError, to_attribute

    try:
        to_attribute(value)
    except RecordRejectedError as rejected:
        return rejected.reason
    return None


@pytest.mark.parametrize(
    ("literal", "reason"),
    [
        (HUGE_INT, Reason.NUMBER_OUT_OF_RANGE),
        ("-" + HUGE_INT, Reason.NUMBER_OUT_OF_RANGE),
        ("1234567890" * 500, Reason.NUMBER_TOO_PRECISE),
        (HUGE_EXPONENT, Reason.NUMBER_OUT_OF_RANGE),
        ("-1.5e-99999999999999999999", Reason.NUMBER_OUT_OF_RANGE),
        ("0e99999999999999999999", None),  # zero whatever the exponent: storable
    ],
    ids=["huge int", "huge negative int", "huge precise int", "huge exponent", "tiny exponent", "zero"],
)
@pytest.mark.parametrize(
    ("fmt", "template"),
    [
        (JSONL, '{{"ok": 1}}\n{{"n": {0}}}\n{{"ok": 3}}\n'),
        (JSONL, '{{"ok": 1}}\n  {{"n": [{0}]}}\n{{"ok": 3}}\n'),  # the careful path (leading blanks)
        (JSON, '[{{"ok": 1}}, {{"n": {0}}}, {{"ok": 3}}]'),
    ],
    ids=["jsonl", "jsonl with leading blanks", "json array"],
)
def test_an_unrepresentable_number_is_one_rejected_record_not_a_crash(
    fmt: ObjectFormat, template: str, literal: str, reason: Reason | None
) -> None:
    records = read(template.format(literal).encode(), fmt)

    assert [(p, v) for p, v in records if p != 2] == [(1, {"ok": 1}), (3, {"ok": 3})]
    assert records[1][0] == 2
    assert rejection(records[1][1]) is reason


def test_an_unrepresentable_number_in_a_single_json_document_is_a_rejected_record() -> None:
    [(position, value)] = read(f'{{"n": {HUGE_EXPONENT}}}'.encode(), JSON)

    assert position == 1
    assert rejection(value) is Reason.NUMBER_OUT_OF_RANGE


def test_a_line_of_non_json_whitespace_is_reported_not_skipped_as_blank() -> None:
    # Only JSON's own whitespace (space, tab, CR) makes a line blank; a vertical tab is data.
    [(position, malformed)] = read(b"\x0b\n", JSONL)

    assert position == 1
    assert isinstance(malformed, Malformed)
    assert malformed.reason is Reason.INVALID_JSON


# --- truncated and multi-member gzip -----------------------------------------------------------------


def five_thousand_lines() -> bytes:
    return b"".join(json.dumps({"n": n}).encode() + b"\n" for n in range(1, 5001))


def drain(data: bytes, fmt: ObjectFormat) -> tuple[list[tuple[int, Any]], UnreadableObjectError | None]:
    got: list[tuple[int, Any]] = []
    try:
        for record in read_records(io.BytesIO(data), fmt):
            got.append(record)
    except UnreadableObjectError as unreadable:
        return got, unreadable
    return got, None


def test_a_small_truncated_gzip_keeps_every_complete_line() -> None:
    # The example: a 5,000-line file, under 1 MiB, missing its last 5 bytes.
    lines = five_thousand_lines()
    assert len(lines) < CHUNK_BYTES

    got, unreadable = drain(gzip.compress(lines)[:-5], ObjectFormat(Format.JSON_LINES, True))

    assert got == [(n, {"n": n}) for n in range(1, 5001)]
    assert unreadable is not None
    assert unreadable.reason is Reason.UNREADABLE_OBJECT
    assert unreadable.position == 0
    assert "truncated after line 5000" in unreadable.detail


def test_a_gzip_truncated_inside_a_line_keeps_the_lines_before_it_and_drops_the_partial_one() -> None:
    lines = five_thousand_lines()
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    # Everything up to the middle of line 3, flushed so those bytes are decodable, then the break.
    cut = lines.index(b"\n", lines.index(b"\n") + 1) + 5
    data = compressor.compress(lines[:cut]) + compressor.flush(zlib.Z_SYNC_FLUSH)

    got, unreadable = drain(data, ObjectFormat(Format.JSON_LINES, True))

    assert got == [(1, {"n": 1}), (2, {"n": 2})]
    assert unreadable is not None
    assert "truncated after line 2" in unreadable.detail


def test_a_multi_member_gzip_reads_every_member_like_gzip_does() -> None:
    # A line may straddle two members; zero padding after a member is skipped (as gzip.GzipFile does).
    data = gzip.compress(b'{"n": 1}\n{"n"') + gzip.compress(b': 2}\n{"n": 3}\n') + b"\0\0\0"

    assert gzip.decompress(data) == b'{"n": 1}\n{"n": 2}\n{"n": 3}\n'
    assert read(data, ObjectFormat(Format.JSON_LINES, True)) == [(1, {"n": 1}), (2, {"n": 2}), (3, {"n": 3})]


def test_garbage_after_a_gzip_member_makes_the_object_unreadable_after_its_lines() -> None:
    got, unreadable = drain(
        gzip.compress(b'{"n": 1}\n') + b"trailing junk", ObjectFormat(Format.JSON_LINES, True)
    )

    assert got == [(1, {"n": 1})]
    assert unreadable is not None
    assert unreadable.reason is Reason.UNREADABLE_OBJECT


def test_an_empty_gzip_object_is_empty_not_truncated() -> None:
    with pytest.raises(UnreadableObjectError) as unreadable:
        read(b"", ObjectFormat(Format.JSON_LINES, True))

    assert unreadable.value.reason is Reason.EMPTY_OBJECT


def test_a_truncated_json_gzip_keeps_the_elements_before_the_break() -> None:
    elements = [{"n": n} for n in range(1, 5001)]
    data = gzip.compress(json.dumps(elements).encode())[:-5]

    got, unreadable = drain(data, ObjectFormat(Format.JSON, True))

    assert got == list(enumerate(elements, 1))  # only the gzip trailer is missing: every element is there
    assert unreadable is not None
    assert (unreadable.reason, unreadable.position) == (Reason.UNREADABLE_OBJECT, 0)
    assert "truncated" in unreadable.detail


def test_a_json_gzip_truncated_inside_an_element_drops_that_element_only() -> None:
    elements = [{"n": n} for n in range(1, 5001)]
    text = json.dumps(elements).encode()
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    cut = text.index(b'{"n": 3}') + 4
    data = compressor.compress(text[:cut]) + compressor.flush(zlib.Z_SYNC_FLUSH)

    got, unreadable = drain(data, ObjectFormat(Format.JSON, True))

    assert got == [(1, {"n": 1}), (2, {"n": 2})]
    assert unreadable is not None
    assert unreadable.reason is Reason.UNREADABLE_OBJECT
    assert "truncated" in unreadable.detail
    assert "2 records read" in unreadable.detail


def test_a_decompression_bomb_is_inflated_a_chunk_at_a_time() -> None:
    # 64 MiB of one line compress to ~64 KiB: reading holds about a chunk of it, never all of it.
    bomb = gzip.compress(b"x" * (64 * CHUNK_BYTES))
    tracemalloc.start()
    try:
        [(position, malformed)] = read(bomb, ObjectFormat(Format.JSON_LINES, True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert position == 1
    assert isinstance(malformed, Malformed)
    assert malformed.reason is Reason.LINE_TOO_LONG
    assert peak < 16 * CHUNK_BYTES


# --- the raw text of every record, for the rejects report --------------------------------------------


def test_json_array_elements_keep_their_raw_text() -> None:
    data = b'\xef\xbb\xbf [ {"a": 1.50} ,\n\t"\\u00e9t\xc3\xa9", 1e2 ]  '
    stream = read_records(io.BytesIO(data), JSON)

    raws = [(position, stream.current_line) for position, _ in stream]

    assert raws == [(1, b'{"a": 1.50}'), (2, b'"\\u00e9t\xc3\xa9"'), (3, b"1e2")]


def test_a_single_json_document_keeps_its_raw_text() -> None:
    data = b' {"a": 1.50}\n'
    stream = read_records(io.BytesIO(data), JSON)

    assert [(position, stream.current_line) for position, _ in stream] == [(1, b'{"a": 1.50}')]


@pytest.mark.parametrize(
    ("data", "kept", "reason"),
    [
        (b'[{"a": 1} {"a": 2}]', 0, Reason.INVALID_JSON),
        (b'[{"a": 1},]', 1, Reason.INVALID_JSON),
        (b'[{"a": 1}', 0, Reason.INVALID_JSON),  # an element counts once the `,` or `]` after it is read
        (b'[{"a": 1}, {"a": 2}] x', 2, Reason.INVALID_JSON),
        (b"[", 0, Reason.INVALID_JSON),
        (b'{"a": 1} {"b": 2}', 1, Reason.INVALID_JSON),
        (b'[{"a": 1}, \xff{"a": 2}]', 1, Reason.INVALID_UTF8),
        (b'[{"a": 1},\n\xef\xbb\xbf{"a": 2}]', 1, Reason.INVALID_JSON),  # a BOM inside is not blank
    ],
    ids=[
        "missing comma",
        "trailing comma",
        "unclosed",
        "extra data",
        "only bracket",
        "two documents",
        "bad utf-8 between elements",
        "bom between elements",
    ],
)
def test_a_damaged_json_document_keeps_the_records_before_the_damage(
    data: bytes, kept: int, reason: Reason
) -> None:
    got, unreadable = drain(data, JSON)

    assert got == [(n, {"a": n}) for n in range(1, kept + 1)]
    assert unreadable is not None
    assert (unreadable.reason, unreadable.position) == (reason, 0)
    assert f"{kept} record" in unreadable.detail


@settings(max_examples=150, deadline=None)
@given(
    body=st.lists(
        st.sampled_from([b'{"n": 1}', b"", b"  ", b"[1]", b"x" * 300, b'"\xc3\xa9"']), max_size=40
    ).map(b"\n".join),
    cuts=st.lists(st.integers(0, 4000), max_size=3),
    chunk=st.integers(1, 300),
    level=st.sampled_from([0, 1, 9]),
)
def test_gzip_in_any_chunking_and_members_reads_like_the_plain_bytes(
    body: bytes, cuts: list[int], chunk: int, level: int
) -> None:
    # Members split anywhere, stored or compressed, read through chunks of any size (down to one byte).
    bounds = [0, *sorted(min(cut, len(body)) for cut in cuts), len(body)]
    packed = b"".join(gzip.compress(body[a:b], level) for a, b in itertools.pairwise(bounds))

    with mock.patch("functions.core.domain.readers.CHUNK_BYTES", chunk):
        plain = drain(body, JSONL)
        unzipped = drain(packed, ObjectFormat(Format.JSON_LINES, True))

    assert unzipped[0] == plain[0]
    assert (unzipped[1] is None) == (plain[1] is None)
