"""Byte ranges of a fan-out number every line exactly as one reader of the whole object does."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.domain.byte_ranges import LineRange, count_segments, newlines_before, plan
from functions.core.domain.formats import Format, ObjectFormat
from functions.core.domain.readers import UnreadableObjectError, read_records

JSONL = ObjectFormat(Format.JSON_LINES, False)


def whole(data: bytes) -> list[tuple[int, bytes | None]]:
    stream = read_records(io.BytesIO(data), JSONL, max_json_bytes=1 << 20)
    found = []
    try:
        for position, _ in stream:
            found.append((position, stream.current_line))
    except UnreadableObjectError:
        pass  # an object of blank lines only: the positions before the verdict are what counts
    return found


def by_ranges(data: bytes, range_bytes: int, chunk: int) -> list[tuple[int, bytes | None]]:
    ranges = plan(len(data), range_bytes)
    counts = [data[start:end].count(b"\n") for start, end in count_segments(ranges)]
    before = newlines_before(counts)
    found = []
    for byte_range in ranges:
        lines = LineRange(io.BytesIO(data[byte_range.read_from :]), byte_range, chunk=chunk)
        stream = read_records(lines, JSONL, max_json_bytes=1 << 20)
        try:
            for local, _ in stream:
                if byte_range.skips_first_line and local == 1:
                    continue
                found.append((local + before[byte_range.index], stream.current_line))
        except UnreadableObjectError:
            pass
    return found


lines = st.lists(
    st.one_of(st.just(b""), st.just(b"{}"), st.just(b'{"a": "x\\ny"}'), st.binary(max_size=12)).map(
        lambda raw: raw.replace(b"\n", b" ")
    ),
    min_size=1,
    max_size=12,
)


@given(
    body=lines,
    trailing_newline=st.booleans(),
    range_bytes=st.integers(min_value=1, max_value=40),
    chunk=st.sampled_from([1, 3, 1024]),
)
def test_ranges_give_every_line_once_with_its_position(
    body: list[bytes], trailing_newline: bool, range_bytes: int, chunk: int
) -> None:
    data = b"\n".join(body) + (b"\n" if trailing_newline else b"")
    if not data:
        return
    assert by_ranges(data, range_bytes, chunk) == whole(data)


@pytest.mark.parametrize(
    ("data", "range_bytes"),
    [
        (b"a\nb\nc\n", 2),  # every range starts exactly at a line start
        (b"a\nb\nc\n", 1),  # ranges of one byte: most own no line at all
        (b"\n\n\n", 1),  # blank lines only
        (b"x" * 50 + b"\nshort\n", 8),  # a long line spans many ranges; only the first owns it
        (b"\xef\xbb\xbfa\n\xef\xbb\xbfb\n", 5),  # a BOM mid-object is not a BOM: only at the very start
        (b"a\nb", 3),  # no trailing newline
    ],
)
def test_edge_cases(data: bytes, range_bytes: int) -> None:
    assert by_ranges(data, range_bytes, 1024) == whole(data)


def test_plan_covers_the_object_in_order() -> None:
    ranges = plan(10, 4)
    assert [(r.index, r.start, r.end) for r in ranges] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    assert [r.read_from for r in ranges] == [0, 3, 7]
    with pytest.raises(ValueError, match="positive"):
        plan(0, 4)
