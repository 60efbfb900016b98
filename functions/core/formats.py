"""Streaming readers for the supported object formats.

Each reader yields `(position, value)` pairs: `position` is 1-based (the line number for JSON Lines,
the element number for a JSON array) and `value` is the decoded JSON value, `BLANK` for a blank line,
or a `Malformed` describing why that one record could not be decoded. A failure of the object as a
whole (bad gzip, truncated stream, over the size limit, empty) raises `UnreadableObjectError` after
the records read so far were yielded.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, StrEnum
from json.scanner import make_scanner
from typing import IO, Any, Final, cast

CHUNK_BYTES: Final = 1024 * 1024
# A DynamoDB item is at most 400 KB, so a longer line can never be stored: drop it without buffering.
MAX_LINE_BYTES: Final = 1024 * 1024
# How much of an over-long line is kept to quote in the rejects report.
RAW_PREFIX_BYTES: Final = 8192
UTF8_BOM: Final = b"\xef\xbb\xbf"


class Format(Enum):
    JSON = "json"
    JSON_LINES = "jsonl"


@dataclass(frozen=True, slots=True)
class ObjectFormat:
    kind: Format
    gzip: bool


def detect_format(key: str) -> ObjectFormat | None:
    """The format implied by the key's suffix, or None when the suffix is not supported."""
    name = key.lower()
    compressed = name.endswith(".gz")
    if compressed:
        name = name[:-3]
    if name.endswith(".json"):
        return ObjectFormat(Format.JSON, compressed)
    if name.endswith((".jsonl", ".ndjson")):
        return ObjectFormat(Format.JSON_LINES, compressed)
    return None


class Reason(StrEnum):
    """Why a record or an object was rejected (the `reason` of a rejects-report entry)."""

    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    NON_FINITE_NUMBER = "non_finite_number"
    LINE_TOO_LONG = "line_too_long"
    NOT_AN_OBJECT = "not_an_object"
    SCHEMA_VIOLATION = "schema_violation"
    NATURAL_KEY_INVALID = "natural_key_invalid"
    ITEM_TOO_LARGE = "item_too_large"
    NESTING_TOO_DEEP = "nesting_too_deep"
    NUMBER_TOO_PRECISE = "number_too_precise"
    NUMBER_OUT_OF_RANGE = "number_out_of_range"
    EMPTY_ATTRIBUTE_NAME = "empty_attribute_name"
    REFUSED_BY_DYNAMODB = "refused_by_dynamodb"
    EMPTY_OBJECT = "empty_object"
    OBJECT_TOO_LARGE = "object_too_large"
    UNREADABLE_OBJECT = "unreadable_object"
    UNSUPPORTED_FORMAT = "unsupported_format"


@dataclass(frozen=True, slots=True)
class Malformed:
    reason: Reason
    detail: str
    raw: bytes


class _Blank:
    __slots__ = ()

    def __repr__(self) -> str:
        return "BLANK"


BLANK: Final = _Blank()


class NonFinite:
    """Stands in for NaN/Infinity, which Python's json accepts but DynamoDB cannot store."""

    __slots__ = ("literal",)

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __repr__(self) -> str:
        return self.literal


class UnreadableObjectError(Exception):
    def __init__(self, reason: Reason, detail: str, position: int = 0) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.position = position


# One decoder for every record: json.loads(..., parse_float=...) would build a new one per call.
_DECODER: Final = json.JSONDecoder(parse_float=Decimal, parse_constant=NonFinite)
decode_json = _DECODER.decode
_scan_once: Callable[[str, int], tuple[Any, int]] = make_scanner(cast(Any, _DECODER))

Item = tuple[int, Any]


def read_records(stream: IO[bytes], fmt: ObjectFormat, *, max_json_bytes: int) -> RecordStream:
    """The records of an object read from `stream` (a file-like object such as an S3 body)."""
    return RecordStream(stream, fmt, max_json_bytes)


class RecordStream:
    """Iterates `(position, value)`; `current_line` is the raw text of the latest JSON Lines record, so a
    rejects report can quote the record exactly as it was written (None for JSON documents)."""

    def __init__(self, stream: IO[bytes], fmt: ObjectFormat, max_json_bytes: int) -> None:
        self._stream = stream
        self._format = fmt
        self._max_json_bytes = max_json_bytes
        self.current_line: bytes | None = None

    def __iter__(self) -> Iterator[Item]:
        fmt = self._format
        source = cast(IO[bytes], gzip.GzipFile(fileobj=self._stream, mode="rb")) if fmt.gzip else self._stream
        try:
            if fmt.kind is Format.JSON_LINES:
                yield from self._json_lines(source)
            else:
                yield from _json_document(source, self._max_json_bytes)
        except (gzip.BadGzipFile, EOFError, zlib.error) as broken:
            # Only decompression failures are the object's fault; read errors of the stream propagate.
            raise UnreadableObjectError(Reason.UNREADABLE_OBJECT, f"cannot decompress: {broken}") from None

    def _json_lines(self, source: IO[bytes]) -> Iterator[Item]:
        position = 0
        pending = b""
        first = True
        saw_record = False
        skipping_long_line = False
        while True:
            chunk = source.read(CHUNK_BYTES)
            if not chunk:
                break
            if first:
                chunk = chunk.removeprefix(UTF8_BOM)
                first = False
            lines = chunk.split(b"\n")
            lines[0] = pending + lines[0]
            pending = lines.pop()
            for line in lines:
                position += 1
                if skipping_long_line:
                    skipping_long_line = False  # this is the tail of the long line
                    item: Item = (
                        position,
                        Malformed(Reason.LINE_TOO_LONG, _TOO_LONG, self.current_line or b""),
                    )
                else:
                    self.current_line = line
                    item = _decode_line(position, line)
                saw_record = saw_record or item[1] is not BLANK
                yield item
            if len(pending) > MAX_LINE_BYTES:
                # Keep only a prefix for the report; the rest of the line is dropped as it streams by.
                if not skipping_long_line:
                    self.current_line = pending[:RAW_PREFIX_BYTES]
                pending = b""
                skipping_long_line = True
        if pending or skipping_long_line:
            position += 1
            if skipping_long_line:
                item = (position, Malformed(Reason.LINE_TOO_LONG, _TOO_LONG, self.current_line or b""))
            else:
                self.current_line = pending
                item = _decode_line(position, pending)
            saw_record = saw_record or item[1] is not BLANK
            yield item
        if not saw_record:
            raise UnreadableObjectError(Reason.EMPTY_OBJECT, "the object holds no records")


_TOO_LONG: Final = "line longer than 1 MiB (no DynamoDB item can be that large)"
# The parser recurses per nesting level and stops at Python's recursion limit (~1,000 levels): such a
# value is far beyond DynamoDB's 32 levels, so it is a data problem to report, never an error to retry.
_TOO_DEEP: Final = "nested too deeply to decode (DynamoDB allows 32 levels)"


def _decode_line(position: int, line: bytes) -> Item:
    if len(line) > MAX_LINE_BYTES:
        return position, Malformed(Reason.LINE_TOO_LONG, _TOO_LONG, line[:RAW_PREFIX_BYTES])
    try:
        text = line.decode()
    except UnicodeDecodeError as bad:
        return position, Malformed(Reason.INVALID_UTF8, str(bad), line)
    try:
        # Hot path: a line that is exactly one JSON value, without JSONDecoder.decode's two
        # whitespace regex scans. Anything else takes the careful path below.
        value, end = _scan_once(text, 0)
        if end == len(text):
            return position, value
    except (StopIteration, json.JSONDecodeError):
        pass
    except RecursionError:
        return position, Malformed(Reason.NESTING_TOO_DEEP, _TOO_DEEP, line[:RAW_PREFIX_BYTES])
    if not text or text.isspace():
        return position, BLANK
    try:
        return position, decode_json(text)
    except json.JSONDecodeError as bad:
        return position, Malformed(Reason.INVALID_JSON, bad.msg + f" at column {bad.colno}", line)
    except RecursionError:
        return position, Malformed(Reason.NESTING_TOO_DEEP, _TOO_DEEP, line[:RAW_PREFIX_BYTES])


def _json_document(source: IO[bytes], max_json_bytes: int) -> Iterator[Item]:
    data = source.read(max_json_bytes + 1)
    if len(data) > max_json_bytes:
        raise UnreadableObjectError(
            Reason.OBJECT_TOO_LARGE, f"a .json object is limited to {max_json_bytes} bytes; use JSON Lines"
        )
    data = data.removeprefix(UTF8_BOM)
    if not data.strip():
        raise UnreadableObjectError(Reason.EMPTY_OBJECT, "the object is empty")
    try:
        document = decode_json(data.decode())
    except UnicodeDecodeError as bad:
        raise UnreadableObjectError(Reason.INVALID_UTF8, str(bad)) from None
    except json.JSONDecodeError as bad:
        raise UnreadableObjectError(
            Reason.INVALID_JSON, f"{bad.msg} at line {bad.lineno} column {bad.colno}"
        ) from None
    except RecursionError:
        raise UnreadableObjectError(Reason.NESTING_TOO_DEEP, _TOO_DEEP) from None
    del data
    if isinstance(document, list):
        if not document:
            raise UnreadableObjectError(Reason.EMPTY_OBJECT, "the array holds no records")
        for index, element in enumerate(document):
            yield index + 1, element
    else:
        yield 1, document
