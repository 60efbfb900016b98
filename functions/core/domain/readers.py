"""Streaming readers for the supported object formats.

Each reader yields `(position, value)` pairs: `position` is 1-based (the line number for JSON Lines,
the element number for a JSON array) and `value` is the decoded JSON value, `BLANK` for a blank line,
or a `Malformed` describing why that one record could not be decoded. A failure of the object as a
whole (bad gzip, truncated stream, a damaged `.json` document, empty) raises `UnreadableObjectError`
after the records read so far were yielded. Every format is streamed: memory holds a read chunk and one
record (at most 1 MiB: a longer one is reported and skipped), whatever the object's size.

Whatever the bytes, reading raises nothing else (read errors of the underlying stream aside): a value
Python cannot hold (an integer over 4,300 digits, an exponent beyond `decimal`'s range) decodes to an
`UnrepresentableNumber` that the record converter rejects, so one poisoned record never fails its object.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, Final

from functions.core.domain.formats import Format, ObjectFormat
from functions.core.domain.json_values import (
    BLANK,
    JSON_BLANKS,
    MAX_RECORD_BYTES,
    RAW_PREFIX_BYTES,
    TOO_DEEP,
    BrokenGzipError,
    Malformed,
    NonFinite,
    UnreadableObjectError,
    UnrepresentableNumber,
    decode_json,
    scan_once,
)
from functions.core.domain.reasons import Reason

if TYPE_CHECKING:
    from functions.core.domain.json_document import JsonDocument

# Shared with the records converter and the use cases, which know these names from here.
__all__ = [
    "BLANK",
    "CHUNK_BYTES",
    "MAX_LINE_BYTES",
    "RAW_PREFIX_BYTES",
    "UTF8_BOM",
    "Malformed",
    "NonFinite",
    "RecordStream",
    "UnreadableObjectError",
    "UnrepresentableNumber",
    "decode_json",
    "read_records",
]

CHUNK_BYTES: Final = 1024 * 1024
# A DynamoDB item is at most 400 KB, so a longer line can never be stored: drop it without buffering.
MAX_LINE_BYTES: Final = MAX_RECORD_BYTES
UTF8_BOM: Final = b"\xef\xbb\xbf"


Item = tuple[int, Any]


def read_records(stream: IO[bytes], fmt: ObjectFormat) -> RecordStream:
    """The records of an object read from `stream` (a file-like object such as an S3 body)."""
    return RecordStream(stream, fmt)


class RecordStream:
    """Iterates `(position, value)`; `current_line` is the raw bytes of the latest record (a JSON Lines
    line, a `.json` array element, or the whole `.json` document), so a rejects report can quote the
    record exactly as it was written."""

    __slots__ = ("_document", "_format", "_line", "_stream")

    def __init__(self, stream: IO[bytes], fmt: ObjectFormat) -> None:
        self._stream = stream
        self._format = fmt
        self._line: bytes | None = None
        self._document: JsonDocument | None = None

    @property
    def current_line(self) -> bytes | None:
        if self._document is not None:
            return self._document.current_line
        return self._line

    @property
    def keeps_text(self) -> bool:
        """True for a `.json` object: `raw_at` still finds a record read within the last ~1-2 MiB of
        text (finding it costs a scan of that text: only worth it for a record that is quoted)."""
        return self._document is not None

    def raw_at(self, position: int) -> bytes | None:
        """The raw bytes of record `position` of a `.json` object while its text is held (the latest
        record always), else None; always None for JSON Lines, whose earlier lines are not kept."""
        return self._document.raw_at(position) if self._document is not None else None

    def __iter__(self) -> Iterator[Item]:
        stream = self._stream
        chunks = _without_bom(_gunzip(stream) if self._format.gzip else _plain(stream))
        if self._format.kind is Format.JSON_LINES:
            return self._json_lines(chunks)
        # Deferred: only `.json` objects need the document scanner; every cold start compiles it otherwise.
        from functions.core.domain.json_document import JsonDocument

        self._document = JsonDocument(chunks)
        return iter(self._document)

    def _json_lines(self, chunks: Iterator[bytes]) -> Iterator[Item]:
        position = 0
        pending = b""
        saw_record = False
        skipping_long_line = False
        while True:
            try:
                chunk = next(chunks, b"")
            except BrokenGzipError as broken:
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


def _plain(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


# zlib's window bits for a gzip wrapper (header and CRC-32/length trailer checked): 16 + 15.
_GZIP_WBITS: Final = 31


def _gunzip(stream: IO[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream, at most CHUNK_BYTES at a time (a highly compressed
    object is never inflated whole). Everything decodable before a break is yielded first, then
    `BrokenGzipError` says whether the data was truncated or corrupt. Members are read one after the
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
        raise BrokenGzipError("corrupt", str(corrupt)) from None
    if started and not inflater.eof:
        raise BrokenGzipError("truncated", "the stream ends before its end-of-stream marker")


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
        value, end = scan_once(text, 0)
        if end == len(text):
            return position, value
    except (StopIteration, json.JSONDecodeError):
        pass
    except RecursionError:
        return position, Malformed(Reason.NESTING_TOO_DEEP, TOO_DEEP, line[:RAW_PREFIX_BYTES])
    except (ValueError, ArithmeticError):
        pass  # a number Python cannot hold: decode_json below re-decodes carefully
    if not text.strip(JSON_BLANKS):
        return position, BLANK
    try:
        return position, decode_json(text)
    except json.JSONDecodeError as bad:
        return position, Malformed(Reason.INVALID_JSON, bad.msg + f" at column {bad.colno}", line)
    except RecursionError:
        return position, Malformed(Reason.NESTING_TOO_DEEP, TOO_DEEP, line[:RAW_PREFIX_BYTES])
