"""What reading a record can give, and the careful JSON decoding every format shares.

A record decodes to a value, `BLANK` (a blank line), or a `Malformed` saying why that one record could
not be decoded; the object as a whole fails with `UnreadableObjectError`. Whatever the bytes, decoding
raises nothing else: a number Python cannot hold (an integer over 4,300 digits, an exponent beyond
`decimal`'s range) decodes to an `UnrepresentableNumber` that the record converter rejects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from json.scanner import make_scanner
from typing import Any, Final, cast

from functions.core.domain.reasons import Reason

# A DynamoDB item is at most 400 KB, so a longer record can never be stored: it is dropped without
# being held (a JSON Lines line in bytes, a `.json` element in characters, so at least as many bytes).
MAX_RECORD_BYTES: Final = 1024 * 1024
# How much of an over-long record is kept to quote in the rejects report.
RAW_PREFIX_BYTES: Final = 8192
# The parser recurses per nesting level and stops at Python's recursion limit (~1,000 levels): such a
# value is far beyond DynamoDB's 32 levels, so it is a data problem to report, never an error to retry.
TOO_DEEP: Final = "nested too deeply to decode (DynamoDB allows 32 levels)"


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
DECODER: Final = json.JSONDecoder(parse_float=Decimal, parse_constant=NonFinite)
_CAREFUL_DECODER: Final = json.JSONDecoder(
    parse_float=_careful_decimal, parse_int=_careful_int, parse_constant=NonFinite
)
scan_once: Callable[[str, int], tuple[Any, int]] = make_scanner(cast(Any, DECODER))
_careful_scan_once: Callable[[str, int], tuple[Any, int]] = make_scanner(cast(Any, _CAREFUL_DECODER))
# JSON's own whitespace (RFC 8259): str.isspace() would also take form feeds or no-break spaces.
JSON_BLANKS: Final = " \t\n\r"
BLANK_RUN: Final = re.compile(r"[ \t\n\r]*")


def skip_blanks(text: str, index: int) -> int:
    """The index of the first non-blank character at or after `index`."""
    blanks = BLANK_RUN.match(text, index)
    return blanks.end() if blanks else index


def decode_json(text: str) -> Any:
    """One JSON text; numbers Python cannot hold decode to `UnrepresentableNumber`."""
    try:
        return DECODER.decode(text)
    except json.JSONDecodeError:
        raise
    except (ValueError, ArithmeticError):  # int() over 4,300 digits; decimal.InvalidOperation
        return _CAREFUL_DECODER.decode(text)


def scan_value(text: str, index: int) -> tuple[Any, int]:
    """The JSON value starting at `index` and the index after it."""
    try:
        return scan_once(text, index)
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


class BrokenGzipError(Exception):
    """The gzip data ends early or is corrupt; the reader says after which record."""

    def __init__(self, problem: str, why: str) -> None:
        super().__init__(f"{problem}: {why}")
        self.problem = problem
        self.why = why
