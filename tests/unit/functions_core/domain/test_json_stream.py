"""A `.json` object is streamed: the same records whatever the chunks it arrives in, each quoted exactly
as written, damage reported after the records before it, and memory bounded by one element."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.core.domain.formats import Format, ObjectFormat
from functions.core.domain.json_document import MAX_ELEMENT_CHARS
from functions.core.domain.readers import (
    CHUNK_BYTES,
    RAW_PREFIX_BYTES,
    UTF8_BOM,
    Malformed,
    UnreadableObjectError,
    read_records,
)
from functions.core.domain.reasons import Reason
from tests.fuzzing import examples

from .test_poison import token_soups

JSON = ObjectFormat(Format.JSON, gzip=False)
JSON_GZ = ObjectFormat(Format.JSON, gzip=True)

Outcome = tuple[list[tuple[int, Any, bytes | None]], tuple[Reason, str] | None]


def outcome(data: bytes, fmt: ObjectFormat = JSON, chunk: int | None = None) -> Outcome:
    """Every record with its quoted text, and the whole-object error if any, read in `chunk`-byte
    pieces (the reader's own chunk size when None)."""
    got: list[tuple[int, Any, bytes | None]] = []
    with mock.patch("functions.core.domain.readers.CHUNK_BYTES", chunk or CHUNK_BYTES):
        stream = read_records(io.BytesIO(data), fmt)
        try:
            for position, value in stream:
                got.append((position, value, stream.current_line))
        except UnreadableObjectError as unreadable:
            return got, (unreadable.reason, f"{unreadable.position}: {unreadable.detail}")
    return got, None


# Strings that would fool a splitter that looks for brackets, quotes or commas without parsing.
TRICKY_STRINGS = [
    '"]"',
    '"[{,"',
    '"\\""',
    '"\\\\"',
    '"\\\\\\""',
    '"}, {"',
    '"\\u005d"',
    '"é ]"',
    '"\\ud83d\\ude00"',
]
scalars = st.sampled_from(["0", "-1.5e3", "12345678901234567890", "true", "null", "1E-7", *TRICKY_STRINGS])
blanks = st.sampled_from(["", " ", "\n", "\r\n\t ", "  \n  "])


@st.composite
def values(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 3 or draw(st.booleans()):
        return draw(scalars)
    gap = draw(blanks)
    if draw(st.booleans()):
        items = draw(st.lists(values(depth + 1), max_size=3))
        return "[" + gap + ("," + gap).join(items) + gap + "]"
    pairs = draw(st.lists(st.tuples(st.sampled_from(TRICKY_STRINGS), values(depth + 1)), max_size=3))
    return "{" + gap + ("," + gap).join(f"{k}{gap}:{gap}{v}" for k, v in pairs) + gap + "}"


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    gaps = st.sampled_from(["", " ", "\n", " \n\t"])
    elements = draw(st.lists(values(), min_size=1, max_size=8))
    if draw(st.booleans()) and len(elements) == 1:
        body = '{"only":' + elements[0] + "}"  # a single document
    else:
        body = "[" + ",".join(draw(gaps) + element + draw(gaps) for element in elements) + "]"
    bom = UTF8_BOM if draw(st.booleans()) else b""
    return bom + (draw(gaps) + body + draw(gaps)).encode()


def reference(data: bytes) -> list[tuple[int, Any, bytes | None]]:
    """The records as the stdlib sees the whole text, with the exact bytes of each element."""
    text = data.removeprefix(UTF8_BOM).decode()
    decoder = json.JSONDecoder(parse_float=Decimal)
    document = decoder.decode(text)
    if not isinstance(document, list):
        return [(1, document, text.strip(" \t\n\r").encode())]
    index = text.index("[") + 1
    records: list[tuple[int, Any, bytes | None]] = []
    for position in range(1, len(document) + 1):
        while text[index] in " \t\n\r,":
            index += 1
        value, end = decoder.raw_decode(text, index)
        records.append((position, value, text[index:end].encode()))
        index = end
    return records


@settings(max_examples=examples(300), deadline=None)
@given(data=documents(), chunk=st.sampled_from([1, 2, 7, 64, 1 << 20]))
def test_any_chunking_gives_the_records_and_quotes_the_whole_text_gives(data: bytes, chunk: int) -> None:
    assert outcome(data, chunk=chunk) == (reference(data), None)


@settings(max_examples=examples(200), deadline=None)
@given(data=documents(), cut=st.integers(0, 10_000), chunk=st.sampled_from([1, 7, 1 << 20]))
def test_a_cut_array_reads_a_prefix_of_its_records_then_reports(data: bytes, cut: int, chunk: int) -> None:
    whole, _ = outcome(data)
    text = data.removeprefix(UTF8_BOM)
    if not text.strip().startswith(b"["):
        return  # a single document cut short can be another valid document ("12" of "123")
    cut = cut % len(text)
    if not text[cut:].strip():
        return  # only blanks were cut: the document is whole

    records, unreadable = outcome(text[:cut], chunk=chunk)

    assert records == whole[: len(records)]
    assert unreadable is not None
    assert unreadable[0] in (Reason.INVALID_JSON, Reason.EMPTY_OBJECT)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_gzip_streams_too_and_reads_like_the_plain_text(chunk: int) -> None:
    data = json.dumps([{"n": n, "s": ']"[{'} for n in range(3000)]).encode()

    assert outcome(gzip.compress(data), JSON_GZ, chunk) == outcome(data, JSON, chunk)
    assert len(outcome(data)[0]) == 3000


def test_the_quote_of_an_element_is_its_bytes_even_with_bytes_that_are_not_utf8() -> None:
    data = b'[{"a": "\xff\xfe"}, "caf\xc3\xa9", 3]'

    records, unreadable = outcome(data, chunk=3)

    assert unreadable is None
    position, malformed, raw = records[0]
    assert isinstance(malformed, Malformed)
    assert (position, malformed.reason) == (1, Reason.INVALID_UTF8)
    assert malformed.raw == raw == b'{"a": "\xff\xfe"}'
    assert records[1:] == [(2, "café", b'"caf\xc3\xa9"'), (3, 3, b"3")]


def big_elements() -> Iterator[tuple[str, bytes]]:
    size = 3 * MAX_ELEMENT_CHARS
    yield "string with brackets and escaped quotes", b'{"s": "' + b'[{\\"},' * (size // 6) + b'"}'
    yield "nested arrays", b"[" + b"[1, 2]," * (size // 7) + b"[]]"
    yield "number", b"1" * size


@pytest.mark.parametrize(("big", "chunk"), [(b, c) for _, b in big_elements() for c in (7919, 1 << 20)])
def test_an_element_over_1_mib_is_reported_and_skipped_without_holding_it(big: bytes, chunk: int) -> None:
    data = b'[{"ok": 1},\n' + big + b' , {"ok": 3}]'

    records, unreadable = outcome(data, chunk=chunk)

    assert unreadable is None
    assert [(p, v) for p, v, _ in records if p != 2] == [(1, {"ok": 1}), (3, {"ok": 3})]
    position, malformed, raw = records[1]
    assert isinstance(malformed, Malformed)
    assert (position, malformed.reason) == (2, Reason.ELEMENT_TOO_LARGE)
    assert malformed.raw == raw == big[:RAW_PREFIX_BYTES]


def test_an_oversized_element_is_skipped_without_being_held() -> None:
    big = b'{"s": "' + b"x" * (32 * CHUNK_BYTES) + b'"}'
    data = b'[{"ok": 1}, ' + big + b", 3]"

    tracemalloc.start()
    try:
        records, unreadable = outcome(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert unreadable is None
    assert [p for p, _, _ in records] == [1, 2, 3]
    assert peak < 10 * CHUNK_BYTES  # a chunk and ~2 MiB of text, never the 32 MiB element


def test_a_single_document_over_1_mib_is_one_reported_record() -> None:
    big = b'{"s": "' + b"x" * (2 * MAX_ELEMENT_CHARS) + b'"}'

    [(position, malformed, _)], unreadable = outcome(big)

    assert unreadable is None
    assert isinstance(malformed, Malformed)
    assert (position, malformed.reason) == (1, Reason.ELEMENT_TOO_LARGE)


def test_an_element_nested_beyond_the_parser_is_one_rejected_record() -> None:
    deep = b"[" * 1500 + b"]" * 1500

    records, unreadable = outcome(b"[1, " + deep + b", 3]", chunk=100)

    assert unreadable is None
    assert [(p, v) for p, v, _ in records if p != 2] == [(1, 1), (3, 3)]
    _, malformed, raw = records[1]
    assert isinstance(malformed, Malformed)
    assert malformed.reason is Reason.NESTING_TOO_DEEP
    assert malformed.raw == raw == deep[:RAW_PREFIX_BYTES]


def test_a_large_array_is_read_in_bounded_memory() -> None:
    # 48 MiB of elements, beyond the 32 MiB `.json` objects were limited to when they were read whole.
    element = json.dumps({"Name": "x" * 400, "Role": "Dev", "n": 1}).encode()
    count = 48 * CHUNK_BYTES // (len(element) + 1)
    data = b"[" + b",".join([element] * count) + b"]"

    tracemalloc.start()
    try:
        records = sum(1 for _ in read_records(io.BytesIO(data), JSON))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert records == count
    assert peak < 10 * CHUNK_BYTES  # a chunk and ~2 MiB of text (and bytes), never the 48 MiB


def test_an_earlier_element_is_quoted_while_its_text_is_held() -> None:
    data = json.dumps([{"n": n} for n in range(10)]).encode()
    stream = read_records(io.BytesIO(data), JSON)
    records = iter(stream)
    for _ in range(5):
        next(records)

    assert stream.keeps_text
    assert [stream.raw_at(p) for p in (1, 4, 5)] == [b'{"n": 0}', b'{"n": 3}', b'{"n": 4}']
    assert stream.raw_at(6) is None  # not read yet


@settings(max_examples=examples(400), deadline=None)
@given(data=token_soups(), chunk=st.sampled_from([1, 7, 64]))
def test_poison_reads_the_same_in_any_chunking(data: bytes, chunk: int) -> None:
    # Records, quotes, and the whole-object error word for word (its line and column included); the
    # markers for numbers Python cannot hold compare by their repr.
    assert repr(outcome(data, chunk=chunk)) == repr(outcome(data))
