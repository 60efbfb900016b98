"""Splitting a JSON Lines object into byte ranges that workers ingest independently (fan_out.py).

A range `[start, end)` owns the lines that START inside it. Its worker reads from `start - 1` (from 0 for
the first range) up to the first newline at or after `end - 1`: the first line it sees is the tail of
the line that contains byte `start - 1` (it belongs to the previous range and is skipped), every later
line starts in `[start, end)`, and the last one ends where the bytes stop. With `newlines_before` = the
number of newlines in `[0, start - 1)`, the line the worker sees as its k-th (k >= 2) is line
`k + newlines_before` of the object: exactly the position a single reader of the whole object gives it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True, slots=True)
class ByteRange:
    index: int
    start: int
    end: int  # exclusive

    @property
    def read_from(self) -> int:
        """Where the worker starts reading: one byte early, to see whether a line starts at `start`."""
        return max(self.start - 1, 0)

    @property
    def skips_first_line(self) -> bool:
        return self.start > 0


def plan(size: int, range_bytes: int) -> list[ByteRange]:
    """`size` bytes in ranges of `range_bytes` (the last one shorter)."""
    if size <= 0 or range_bytes <= 0:
        raise ValueError("size and range_bytes must be positive")
    return [
        ByteRange(index, start, min(start + range_bytes, size))
        for index, start in enumerate(range(0, size, range_bytes))
    ]


def count_segments(ranges: list[ByteRange]) -> list[tuple[int, int]]:
    """The byte segments whose newline counts give each range's `newlines_before`: segment i is
    `[ranges[i].read_from, ranges[i + 1].read_from)` (the last range needs none)."""
    return [(ranges[i].read_from, ranges[i + 1].read_from) for i in range(len(ranges) - 1)]


def newlines_before(segment_counts: list[int]) -> list[int]:
    """Each range's `newlines_before` from the newline counts of `count_segments`."""
    totals = [0]
    for count in segment_counts:
        totals.append(totals[-1] + count)
    return totals


class LineRange(io.RawIOBase):
    """The bytes a range's worker reads, cut after the first newline at or after `end - 1` (absolute
    offsets; `stream` starts at `read_from`)."""

    def __init__(self, stream: IO[bytes], byte_range: ByteRange, *, chunk: int = 1024 * 1024) -> None:
        super().__init__()
        self._stream = stream
        self._offset = byte_range.read_from  # absolute offset of the next byte `stream` gives
        self._cut_from = byte_range.end - 1  # the first newline at or after this offset ends the range
        self._chunk = chunk
        self._done = False
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._buffer and not self._done:
            self._buffer = self._next()
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def _next(self) -> bytes:
        data = self._stream.read(self._chunk)
        if not data:
            self._done = True
            return b""
        start = self._offset
        self._offset += len(data)
        if self._offset <= self._cut_from:
            return data
        newline = data.find(b"\n", max(self._cut_from - start, 0))
        if newline < 0:
            return data
        self._done = True
        return data[: newline + 1]

    def close(self) -> None:
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
        finally:
            super().close()
