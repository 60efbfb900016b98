"""A `.json` object read as a stream: the elements of a top-level array one at a time (any other value is
the one record), so memory holds one element and a read chunk, never the document.

Why a splitter of our own rather than a streaming parser such as ijson: a rejects report quotes a
record exactly as written, and ijson gives values and parse events, not an element's original text
(https://github.com/ICRAR/ijson/issues/56 asks for it); and every record must decode like a JSON Lines
line (the same C scanner, `Decimal` floats, the careful path for numbers Python cannot hold). So each
element is decoded by that scanner straight from the decoded text read so far; only when an element
runs past that text is more read and the element scanned again (reading doubles the held text each
time, so an element is scanned a few times at most). An element is read once the `,` or `]` after it
is seen. Damage to the document (a syntax error, a truncation, gzip that breaks) ends the reading
after the elements before it, with one whole-object error.
"""

from __future__ import annotations

import codecs
import json
import re
from array import array
from collections import deque
from collections.abc import Iterator
from typing import Any, Final

from functions.core.domain.json_values import (
    BLANK_RUN,
    JSON_BLANKS,
    MAX_RECORD_BYTES,
    RAW_PREFIX_BYTES,
    TOO_DEEP,
    BrokenGzipError,
    Malformed,
    UnreadableObjectError,
    scan_once,
    scan_value,
    skip_blanks,
)
from functions.core.domain.reasons import Reason

# An element over this many characters (so at least as many bytes) can never be stored (a DynamoDB item
# is at most 400 KB): it is reported and skipped by its brackets and quotes without being held.
MAX_ELEMENT_CHARS: Final = MAX_RECORD_BYTES
TOO_LARGE: Final = "element longer than 1 MiB (no DynamoDB item can be that large)"
# What may follow an array element or a document.
_AFTER_VALUE: Final = " \t\n\r,]"
# A scan that fails this close to the end of the text read so far may fail only because the text stops
# there: the longest token the scanner reports at its start is "-Infinity"; a "\uXXXX" escape is 6.
_CUT_MARGIN: Final = 16
# A byte that is not UTF-8 decodes (surrogateescape) to one of these lone surrogates, which no valid
# UTF-8 text contains; they encode back to the very bytes.
_ESCAPED_BYTE: Final = re.compile("[\udc80-\udcff]")
# Structural characters, to skip a value without decoding it: outside strings, then inside one.
_STRUCTURE: Final = re.compile(r'["\[\]{}]')
_STRING_END: Final = re.compile(r'["\\]')
_TOKEN_END: Final = re.compile(r"[ \t\n\r,\]}]")
# How many read windows `raw_at` can still quote from (each ~1 MiB of text, or one long element).
_KEPT_WINDOWS: Final = 2


class _Anchor:
    """A text the reader held, where record `first` starts in it, and the spans of its records (found
    only when one of them is quoted)."""

    __slots__ = ("first", "spans", "start", "text")

    def __init__(self, text: str, first: int, start: int) -> None:
        self.text, self.first, self.start = text, first, start
        self.spans = array("q")


class JsonDocument:
    """Iterates the `(position, value)` records of a streamed `.json` object; `current_line` is the raw
    bytes of the latest one, `raw_at` those of a record whose text is still held (the last ~1-2 MiB)."""

    __slots__ = ("_anchors", "_end", "_line", "_position", "_start", "_text", "_window")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._window = _TextWindow(chunks)
        self._position = 0
        # The latest record is text[start:end] (None: its bytes are `_line`, the kept start of a record
        # that was skipped).
        self._text: str | None = None
        self._start = self._end = 0
        self._line = b""
        self._anchors: deque[_Anchor] = deque(maxlen=_KEPT_WINDOWS)

    @property
    def current_line(self) -> bytes:
        text = self._text
        if text is None:
            return self._line
        if text.isascii():  # O(1); the usual case: the text's own bytes, encoded once, then sliced
            window = self._window
            if window.ascii_of is not text:
                window.ascii, window.ascii_of = text.encode("ascii"), text
            return window.ascii[self._start : self._end]
        # The text was decoded with surrogateescape: encoding it back gives the bytes exactly as written.
        return text[self._start : self._end].encode("utf-8", "surrogateescape")

    def raw_at(self, position: int) -> bytes | None:
        """The raw bytes of record `position` if its text is still held, else None."""
        if position == self._position:
            return self.current_line
        for anchor in reversed(self._anchors):
            if anchor.first <= position < self._position:
                return _span_text(anchor, position)
        return None

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        window = self._window
        text, index = window.non_blank("", 0)
        if index == len(text):
            window.finish(0)
            raise UnreadableObjectError(Reason.EMPTY_OBJECT, "the object is empty")
        if text[index] != "[":
            self._position = 1
            value, text, end = self._value(text, index, 1)
            yield 1, value
            window.expect_end(text, end, 1)
            return
        text, index = window.non_blank(text, index + 1)
        if text.startswith("]", index):
            window.expect_end(text, index + 1, 0)
            raise UnreadableObjectError(Reason.EMPTY_OBJECT, "the array holds no records")
        self._anchor(text, 1, index)
        scan = scan_once
        blanks, skip = JSON_BLANKS, BLANK_RUN.match
        # Over this, an element takes the slow path: too large, or (-1) any element once a byte that is
        # not UTF-8 was read (its text is checked).
        limit = -1 if window.tainted else MAX_ELEMENT_CHARS
        position = 0
        while True:
            position += 1
            try:
                # Hot path: an element the text holds whole, followed at once by `,` or `]`.
                value, end = scan(text, index)
                after = text[end]
            except (StopIteration, IndexError, ValueError, ArithmeticError, RecursionError):
                after = ""
            if (after == "," or after == "]") and end - index <= limit:
                self._text, self._start, self._end, self._position = text, index, end, position
            else:
                self._position = position
                value, text, end = self._value(text, index, position)
                text, end = window.non_blank(text, end)
                if end == len(text):
                    raise window.ended(position - 1)
                after = text[end]
                if after != "," and after != "]":
                    raise window.invalid(text, end, "Expecting ',' delimiter", position - 1)
                self._anchor(text, position + 1, end + 1)
                limit = -1 if window.tainted else MAX_ELEMENT_CHARS
            yield position, value
            if after == "]":
                window.expect_end(text, end + 1, position)
                return
            index = end + 1
            following = text[index : index + 1]
            if following in blanks:  # a blank, or the end of the text read so far
                if following == " " and text[index + 1 : index + 2] not in blanks:
                    index += 1  # ", ": json.dumps's separator
                else:
                    match = skip(text, index)
                    index = match.end() if match else index
                    if index == len(text):
                        text, index = window.non_blank(text, index)
                        self._anchor(text, position + 1, index)
                        limit = -1 if window.tainted else MAX_ELEMENT_CHARS

    def _anchor(self, text: str, first: int, start: int) -> None:
        """Remember a new text the reader holds, so `raw_at` can quote its records later."""
        anchors = self._anchors
        if not anchors or anchors[-1].text is not text:
            anchors.append(_Anchor(text, first, start))

    def _value(self, text: str, index: int, position: int) -> tuple[Any, str, int]:
        """The value starting at `text[index]` (a record), the text holding it and the index after it;
        reads more while the value may go on past the text read so far."""
        window = self._window
        while True:
            try:
                value, end = scan_value(text, index)
            except json.JSONDecodeError as bad:
                if not window.may_be_cut(text, bad):
                    raise window.invalid(text, bad.pos, bad.msg, position - 1) from None
            except RecursionError:
                return self._skipped(text, index, position, Reason.NESTING_TOO_DEEP, TOO_DEEP)
            else:
                # A number at the end of the text (or cut inside its exponent) may go on in the next chunk.
                if window.eof or not (
                    end == len(text) or (end + _CUT_MARGIN > len(text) and text[end] not in _AFTER_VALUE)
                ):
                    break
            if len(text) - index > MAX_ELEMENT_CHARS:
                return self._skipped(text, index, position, Reason.ELEMENT_TOO_LARGE, TOO_LARGE)
            text, index = window.refill(text, index), 0
        if end - index > MAX_ELEMENT_CHARS:  # whatever the chunks it was read in
            self._text, self._line = None, _prefix(text, index, end)
            return Malformed(Reason.ELEMENT_TOO_LARGE, TOO_LARGE, self._line), text, end
        self._text, self._start, self._end = text, index, end
        self._anchor(text, position, index)
        if window.tainted and _ESCAPED_BYTE.search(text, index, end):
            raw = text[index:end].encode("utf-8", "surrogateescape")
            try:
                raw.decode()
            except UnicodeDecodeError as bad:
                return Malformed(Reason.INVALID_UTF8, str(bad), raw), text, end
        return value, text, end

    def _skipped(
        self, text: str, index: int, position: int, reason: Reason, detail: str
    ) -> tuple[Malformed, str, int]:
        """A record that cannot be decoded as it stands: reported with the start of its text, and
        skipped without holding the rest of it."""
        window = self._window
        while len(text) - index < RAW_PREFIX_BYTES and not window.eof:  # the same quote whatever the chunks
            text, index = window.refill(text, index), 0
        head = text[index : index + RAW_PREFIX_BYTES]
        after, end = window.skip_value(text, index, position - 1)
        # The whole record when the text held it whole, else its start.
        self._text, self._line = None, _prefix(text, index, end) if after is text else _prefix(head, 0, None)
        return Malformed(reason, detail, self._line), after, end


def _prefix(text: str, index: int, end: int | None) -> bytes:
    cut = index + RAW_PREFIX_BYTES if end is None else min(end, index + RAW_PREFIX_BYTES)
    return text[index:cut].encode("utf-8", "surrogateescape")[:RAW_PREFIX_BYTES]


def _span_text(anchor: _Anchor, position: int) -> bytes | None:
    """The raw bytes of record `position` in the text of `anchor`, its spans found by scanning the text
    from the anchor (once: they are kept); None if a record before it cannot be scanned."""
    text, spans = anchor.text, anchor.spans
    wanted = position - anchor.first
    index = skip_blanks(text, spans[-1] if spans else anchor.start)
    while len(spans) // 2 <= wanted:
        if spans:
            if not text.startswith(",", index):
                return None
            index = skip_blanks(text, index + 1)
        try:
            _, end = scan_value(text, index)
        except (ValueError, RecursionError):
            return None
        spans.extend((index, end))
        index = skip_blanks(text, end)
    start, end = spans[2 * wanted], spans[2 * wanted + 1]
    return text[start:end].encode("utf-8", "surrogateescape")


class _TextWindow:
    """The decoded text of a streamed `.json` document from the current record on. Reading more drops
    the text before the record, so memory holds one record and a chunk, never the document. Bytes are
    decoded with surrogateescape: a byte that is not UTF-8 stays visible (and exactly quotable)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.eof = False
        self.tainted = False  # a byte that is not UTF-8 was read: check each record's text
        # An ASCII text is its own bytes: encoded once when a record of it is quoted, then sliced.
        self.ascii: bytes = b""
        self.ascii_of: str | None = None  # the text `ascii` encodes
        self._broken: BrokenGzipError | None = None
        # Where the dropped text ended, for error messages: its newlines, and the column after its last.
        self._lines = 0
        self._column = 0

    def refill(self, text: str, keep_from: int) -> str:
        """`text[keep_from:]` followed by at least as many more characters (or all that is left)."""
        self._lines += text.count("\n", 0, keep_from)
        newline = text.rfind("\n", 0, keep_from)
        self._column = keep_from - newline - 1 if newline >= 0 else self._column + keep_from
        parts = [text[keep_from:]]
        wanted = max(len(parts[0]), 1)
        while wanted > 0 and not self.eof:
            try:
                chunk = next(self._chunks, b"")
            except BrokenGzipError as broken:
                self._broken, chunk = broken, b""
            piece = self._decoder.decode(chunk, final=not chunk)
            self.eof = not chunk
            if not chunk.isascii() and _ESCAPED_BYTE.search(piece):
                self.tainted = True
            parts.append(piece)
            wanted -= len(piece)
        self.ascii, self.ascii_of = b"", None
        return "".join(parts)

    def non_blank(self, text: str, index: int) -> tuple[str, int]:
        """The text and the index of its first non-blank character at or after `index`, reading more as
        needed (the index is `len(text)` when the document ends first)."""
        index = skip_blanks(text, index)
        while index == len(text) and not self.eof:
            text = self.refill(text, index)
            index = skip_blanks(text, 0)
        return text, index

    def may_be_cut(self, text: str, bad: json.JSONDecodeError) -> bool:
        """Whether a scan may have failed only because the text read so far stops early."""
        if self.eof:
            return False
        return bad.msg.startswith("Unterminated string") or bad.pos + _CUT_MARGIN > len(text)

    def skip_value(self, text: str, index: int, records: int) -> tuple[str, int]:
        """The text and the index after the value starting at `text[index]`, found by its brackets and
        quotes alone (the value is never decoded nor held whole)."""
        depth = 0
        inside = False  # a string
        if text[index] not in '"[{':  # a number or a literal: it ends at a blank or a delimiter
            while (found := _TOKEN_END.search(text, index)) is None:
                if self.eof:  # the document's last value
                    return text, len(text)
                text, index = self.refill(text, len(text)), 0
            return text, found.start()
        while True:
            found = (_STRING_END if inside else _STRUCTURE).search(text, index)
            if found is None:
                text, index = self._more(text, len(text), records), 0
                continue
            mark, index = found.group(), found.end()
            if mark == "\\":
                if index == len(text):  # the escaped character is in the next chunk
                    text, index = self._more(text, index - 1, records), 0
                    continue
                index += 1
            elif mark == '"':
                inside = not inside
            elif mark in "[{":
                depth += 1
            else:
                depth -= 1
            if depth == 0 and not inside:
                return text, index

    def _more(self, text: str, keep_from: int, records: int) -> str:
        if self.eof:
            raise self.ended(records)
        return self.refill(text, keep_from)

    def expect_end(self, text: str, index: int, records: int) -> None:
        """Only blanks may follow the document."""
        text, index = self.non_blank(text, index)
        if index < len(text):
            raise self.invalid(text, index, "Extra data", records)
        self.finish(records)

    def finish(self, records: int) -> None:
        if self._broken is not None:
            raise self._gzip_error(records)

    def ended(self, records: int) -> UnreadableObjectError:
        """The document stops before its end."""
        if self._broken is not None:
            return self._gzip_error(records)
        return UnreadableObjectError(
            Reason.INVALID_JSON, f"the document ends early ({_read(records)} before it)"
        )

    def invalid(self, text: str, index: int, problem: str, records: int) -> UnreadableObjectError:
        if self.eof and self._broken is not None:
            return self._gzip_error(records)
        newline = text.rfind("\n", 0, index)
        line = self._lines + text.count("\n", 0, index) + 1
        column = index - newline if newline >= 0 else self._column + index + 1
        where = f"at line {line} column {column} ({_read(records)} before it)"
        if index < len(text) and _ESCAPED_BYTE.match(text, index):
            byte = text[index].encode("utf-8", "surrogateescape")
            return UnreadableObjectError(Reason.INVALID_UTF8, f"byte {byte!r} is not UTF-8 {where}")
        return UnreadableObjectError(Reason.INVALID_JSON, f"{problem} {where}")

    def _gzip_error(self, records: int) -> UnreadableObjectError:
        broken = self._broken
        assert broken is not None
        return UnreadableObjectError(
            Reason.UNREADABLE_OBJECT,
            f"gzip data {broken.problem}: {broken.why} ({_read(records)} before the break, "
            "an incomplete last one dropped)",
        )


def _read(records: int) -> str:
    return f"{records} record{'' if records == 1 else 's'} read"
