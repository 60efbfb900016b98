"""Streaming readers for the supported object formats.

Each reader yields `(position, value)` pairs: `position` is 1-based (the line number for JSON Lines,
the element number for a JSON array) and `value` is the decoded JSON value, `BLANK` for a blank line,
or a `Malformed` describing why that one record could not be decoded. A failure of the object as a
whole (bad gzip, truncated stream, over the size limit, empty) raises `UnreadableObjectError` after
the records read so far were yielded.

Whatever the bytes, reading raises nothing else (read errors of the underlying stream aside): a value
Python cannot hold (an integer over 4,300 digits, an exponent beyond `decimal`'s range) decodes to an
`UnrepresentableNumber` that the record converter rejects, so one poisoned record never fails its object.
"""

from __future__ import annotations

import json
import re
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from json.scanner import make_scanner
from typing import IO, Any, Final, cast

from functions.core.domain.formats import Format, ObjectFormat
from functions.core.domain.reasons import Reason

CHUNK_BYTES: Final = 1024 * 1024
# A DynamoDB item is at most 400 KB, so a longer line can never be stored: drop it without buffering.
MAX_LINE_BYTES: Final = 1024 * 1024
# How much of an over-long line is kept to quote in the rejects report.
RAW_PREFIX_BYTES: Final = 8192
UTF8_BOM: Final = b"\xef\xbb\xbf"


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


class UnrepresentableNumber:
    """Stands in for a number literal Python cannot hold: an integer of more than 4,300 digits
    (CPython's limit on int() of a string) or an exponent beyond `decimal`'s range. Such a number is far
    outside DynamoDB's range, so the record converter rejects it with a reason."""

    __slots__ = ("literal",)

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __repr__(self) -> str:
        return f"UnrepresentableNumber({self.literal[:40]}...)"


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


def _careful_int(literal: str) -> int | UnrepresentableNumber:
    try:
        return int(literal)
    except ValueError:  # more digits than sys.get_int_max_str_digits() allows
        return UnrepresentableNumber(literal)


def _careful_decimal(literal: str) -> Decimal | UnrepresentableNumber:
    try:
        return Decimal(literal)
    except ArithmeticError:  # decimal.InvalidOperation: the exponent is beyond decimal's range
        mantissa = re.split("[eE]", literal, maxsplit=1)[0]
        if not mantissa.strip("-0."):
            return Decimal(mantissa)  # zero, whatever the exponent
        return UnrepresentableNumber(literal)


# One decoder for every record: json.loads(..., parse_float=...) would build a new one per call. The
# careful one calls Python per number, so it only re-decodes the rare record the fast one cannot.
_DECODER: Final = json.JSONDecoder(parse_float=Decimal, parse_constant=NonFinite)
_CAREFUL_DECODER: Final = json.JSONDecoder(
    parse_float=_careful_decimal, parse_int=_careful_int, parse_constant=NonFinite
)
_scan_once: Callable[[str, int], tuple[Any, int]] = make_scanner(cast(Any, _DECODER))
_careful_scan_once: Callable[[str, int], tuple[Any, int]] = make_scanner(cast(Any, _CAREFUL_DECODER))
# JSON's own whitespace (RFC 8259): str.isspace() would also take form feeds or no-break spaces.
_JSON_BLANKS: Final = " \t\n\r"
_BLANK_RUN: Final = re.compile(r"[ \t\n\r]*")


def _skip_blanks(text: str, index: int) -> int:
    """The index of the first non-blank character at or after `index`."""
    blanks = _BLANK_RUN.match(text, index)
    return blanks.end() if blanks else index


def decode_json(text: str) -> Any:
    """One JSON text; numbers Python cannot hold decode to `UnrepresentableNumber`."""
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError:
        raise
    except (ValueError, ArithmeticError):  # int() over 4,300 digits; decimal.InvalidOperation
        return _CAREFUL_DECODER.decode(text)


def _scan_value(text: str, index: int) -> tuple[Any, int]:
    """The JSON value starting at `index` and the index after it."""
    try:
        return _scan_once(text, index)
    except StopIteration as stop:
        raise json.JSONDecodeError("Expecting value", text, stop.value) from None
    except json.JSONDecodeError:
        raise
    except (ValueError, ArithmeticError):
        pass
    try:
        return _careful_scan_once(text, index)
    except StopIteration as stop:
        raise json.JSONDecodeError("Expecting value", text, stop.value) from None


Item = tuple[int, Any]


def read_records(stream: IO[bytes], fmt: ObjectFormat, *, max_json_bytes: int) -> RecordStream:
    """The records of an object read from `stream` (a file-like object such as an S3 body)."""
    return RecordStream(stream, fmt, max_json_bytes)


class _BrokenGzipError(Exception):
    """The gzip data ends early or is corrupt; the reader says after which record."""

    def __init__(self, problem: str, why: str) -> None:
        super().__init__(f"{problem}: {why}")
        self.problem = problem
        self.why = why


class RecordStream:
    """Iterates `(position, value)`; `current_line` is the raw bytes of the latest record (a JSON Lines
    line, a `.json` array element, or the whole `.json` document), so a rejects report can quote the
    record exactly as it was written."""

    def __init__(self, stream: IO[bytes], fmt: ObjectFormat, max_json_bytes: int) -> None:
        self._stream = stream
        self._format = fmt
        self._max_json_bytes = max_json_bytes
        self._line: bytes | None = None
        # A .json object: its text, the latest element (0: the document is the record), and the spans
        # of the elements, found only when one is quoted.
        self._text: str | None = None
        self._element = 0
        self._spans: array[int] | None = None

    @property
    def current_line(self) -> bytes | None:
        if self._text is None:
            return self._line
        return self.raw_at(self._element)

    @property
    def keeps_text(self) -> bool:
        """True for a `.json` object, whose whole text stays readable through `raw_at` (finding an
        element's text costs a scan of the array: only worth it for a record that is quoted)."""
        return self._text is not None

    def raw_at(self, position: int) -> bytes | None:
        """The raw bytes of record `position` of a `.json` object (0 or 1 for a single document);
        None for JSON Lines, whose earlier lines are not kept."""
        text = self._text
        if text is None:
            return None
        if self._element:
            if self._spans is None:
                self._spans = _element_spans(text)
            start, end = self._spans[2 * position - 2], self._spans[2 * position - 1]
        else:
            start, end = _skip_blanks(text, 0), len(text.rstrip(_JSON_BLANKS))
        return text[start:end].encode("utf-8", "surrogatepass")

    def __iter__(self) -> Iterator[Item]:
        stream = self._stream
        chunks = _without_bom(_gunzip(stream) if self._format.gzip else _plain(stream))
        if self._format.kind is Format.JSON_LINES:
            return self._json_lines(chunks)
        return self._json_document(chunks)

    def _json_lines(self, chunks: Iterator[bytes]) -> Iterator[Item]:
        position = 0
        pending = b""
        saw_record = False
        skipping_long_line = False
        while True:
            try:
                chunk = next(chunks, b"")
            except _BrokenGzipError as broken:
                raise UnreadableObjectError(
                    Reason.UNREADABLE_OBJECT,
                    f"gzip data {broken.problem} after line {position}: {broken.why} "
                    "(the lines before the break were kept, an incomplete last line dropped)",
                ) from None
            if not chunk:
                break
            lines = chunk.split(b"\n")
            lines[0] = pending + lines[0]
            pending = lines.pop()
            for line in lines:
                position += 1
                if skipping_long_line:
                    skipping_long_line = False  # this is the tail of the long line
                    item: Item = (position, Malformed(Reason.LINE_TOO_LONG, _TOO_LONG, self._line or b""))
                else:
                    self._line = line
                    item = _decode_line(position, line)
                saw_record = saw_record or item[1] is not BLANK
                yield item
            if len(pending) > MAX_LINE_BYTES:
                # Keep only a prefix for the report; the rest of the line is dropped as it streams by.
                if not skipping_long_line:
                    self._line = pending[:RAW_PREFIX_BYTES]
                pending = b""
                skipping_long_line = True
        if pending or skipping_long_line:
            position += 1
            if skipping_long_line:
                item = (position, Malformed(Reason.LINE_TOO_LONG, _TOO_LONG, self._line or b""))
            else:
                self._line = pending
                item = _decode_line(position, pending)
            saw_record = saw_record or item[1] is not BLANK
            yield item
        if not saw_record:
            raise UnreadableObjectError(Reason.EMPTY_OBJECT, "the object holds no records")

    def _json_document(self, chunks: Iterator[bytes]) -> Iterator[Item]:
        """A `.json` object is one JSON text (read whole, up to the limit): all of it is valid JSON, or
        none of it is read."""
        limit = self._max_json_bytes
        data = bytearray()  # grows in place: no second copy of the object, as joining chunks would make
        try:
            for chunk in chunks:
                if len(data) + len(chunk) > limit:
                    raise UnreadableObjectError(
                        Reason.OBJECT_TOO_LARGE, f"a .json object is limited to {limit} bytes; use JSON Lines"
                    )
                data += chunk
        except _BrokenGzipError as broken:
            raise UnreadableObjectError(
                Reason.UNREADABLE_OBJECT,
                f"gzip data {broken.problem}: {broken.why}; a .json document is read whole or not at all",
            ) from None
        try:
            text = data.decode()
        except UnicodeDecodeError as bad:
            raise UnreadableObjectError(Reason.INVALID_UTF8, str(bad)) from None
        del data
        if not text.strip(_JSON_BLANKS):
            raise UnreadableObjectError(Reason.EMPTY_OBJECT, "the object is empty")
        try:
            # One call for the whole text: the decoder shares each key string among all elements, which
            # keeps the decoded document small (scanning element by element would not).
            document = decode_json(text)
        except json.JSONDecodeError as bad:
            raise UnreadableObjectError(
                Reason.INVALID_JSON, f"{bad.msg} at line {bad.lineno} column {bad.colno}"
            ) from None
        except RecursionError:
            raise UnreadableObjectError(Reason.NESTING_TOO_DEEP, _TOO_DEEP) from None
        self._text = text
        if type(document) is not list:
            yield 1, document
            return
        if not document:
            raise UnreadableObjectError(Reason.EMPTY_OBJECT, "the array holds no records")
        for position, value in enumerate(document, 1):
            self._element = position
            yield position, value


def _element_spans(text: str) -> array[int]:
    """Start and end index of each element of the top-level array `text` (valid JSON: it decoded)."""
    spans = array("q")
    index = _skip_blanks(text, _skip_blanks(text, 0) + 1)
    if text.startswith("]", index):
        return spans
    while True:
        _, end = _scan_value(text, index)
        spans.extend((index, end))
        index = _skip_blanks(text, end)
        if not text.startswith(",", index):
            return spans
        index = _skip_blanks(text, index + 1)


def _plain(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


# zlib's window bits for a gzip wrapper (header and CRC-32/length trailer checked): 16 + 15.
_GZIP_WBITS: Final = 31


def _gunzip(stream: IO[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream, at most CHUNK_BYTES at a time (a highly compressed
    object is never inflated whole). Everything decodable before a break is yielded first, then
    `_BrokenGzipError` says whether the data was truncated or corrupt. Members are read one after the
    other and zero padding between them is skipped, as `gzip.GzipFile` does."""
    inflater = zlib.decompressobj(_GZIP_WBITS)
    started = False  # a member has begun: an end of input now means truncation
    pending = b""
    try:
        while True:
            if not pending:
                pending = stream.read(CHUNK_BYTES)
                if not pending:
                    break
            if inflater.eof:  # between members
                pending = pending.lstrip(b"\0")
                if not pending:
                    continue
                inflater = zlib.decompressobj(_GZIP_WBITS)
            started = True
            out = inflater.decompress(pending, CHUNK_BYTES)
            pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if out:
                yield out
            # zlib may hold output back although it took all the input: drain it chunk by chunk.
            while len(out) == CHUNK_BYTES and not pending and not inflater.eof:
                out = inflater.decompress(b"", CHUNK_BYTES)
                pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                if out:
                    yield out
    except zlib.error as corrupt:
        raise _BrokenGzipError("corrupt", str(corrupt)) from None
    if started and not inflater.eof:
        raise _BrokenGzipError("truncated", "the stream ends before its end-of-stream marker")


def _without_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(UTF8_BOM):
            break
    if head := head.removeprefix(UTF8_BOM):
        yield head
    yield from chunks


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
    except (ValueError, ArithmeticError):
        pass  # a number Python cannot hold: decode_json below re-decodes carefully
    if not text.strip(_JSON_BLANKS):
        return position, BLANK
    try:
        return position, decode_json(text)
    except json.JSONDecodeError as bad:
        return position, Malformed(Reason.INVALID_JSON, bad.msg + f" at column {bad.colno}", line)
    except RecursionError:
        return position, Malformed(Reason.NESTING_TOO_DEEP, _TOO_DEEP, line[:RAW_PREFIX_BYTES])
