"""The reader's format table: the suffixes routed to ingest are exactly the ones its readers accept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.core.domain.formats import (
    READABLE_SUFFIXES,
    SUPPORTED_DESCRIPTION,
    Format,
    ObjectFormat,
    detect_format,
)


def test_readable_suffixes_are_each_format_plain_and_gzipped() -> None:
    assert READABLE_SUFFIXES == (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")


@pytest.mark.parametrize("suffix", READABLE_SUFFIXES)
def test_every_readable_suffix_is_read_in_any_case(suffix: str) -> None:
    assert detect_format(f"data/x{suffix}") is not None
    assert detect_format(f"data/X{suffix.upper()}") == detect_format(f"data/x{suffix}")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a.json", ObjectFormat(Format.JSON, gzip=False)),
        ("a.json.gz", ObjectFormat(Format.JSON, gzip=True)),
        ("a.jsonl", ObjectFormat(Format.JSON_LINES, gzip=False)),
        ("a.ndjson.gz", ObjectFormat(Format.JSON_LINES, gzip=True)),
    ],
)
def test_the_suffix_names_the_format_and_the_compression(key: str, expected: ObjectFormat) -> None:
    assert detect_format(key) == expected


@pytest.mark.parametrize("key", ["a.csv", "a.gz", "a.json.zip", "a.jsonl.bz2", "json", "a.json/", "a.gz.gz"])
def test_other_suffixes_are_not_read(key: str) -> None:
    assert detect_format(key) is None


@given(st.lists(st.sampled_from(["a", ".", "json", "jsonl", "ndjson", "gz", "JSON", "/"]), max_size=8))
def test_a_key_is_read_exactly_when_it_ends_in_a_readable_suffix(parts: list[str]) -> None:
    key = "".join(parts)

    assert (detect_format(key) is not None) == key.lower().endswith(READABLE_SUFFIXES)


def test_the_unsupported_format_message_lists_the_table() -> None:
    assert SUPPORTED_DESCRIPTION == "supported: .json, .jsonl, .ndjson, optionally .gz"
