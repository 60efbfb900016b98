"""Why a record or an object was rejected: the `reason` of every rejects-report entry, in one place."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a record or an object was rejected (the `reason` of a rejects-report entry)."""

    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    NON_FINITE_NUMBER = "non_finite_number"
    LINE_TOO_LONG = "line_too_long"
    ELEMENT_TOO_LARGE = "element_too_large"
    NOT_AN_OBJECT = "not_an_object"
    SCHEMA_VIOLATION = "schema_violation"
    NATURAL_KEY_INVALID = "natural_key_invalid"
    ITEM_TOO_LARGE = "item_too_large"
    NESTING_TOO_DEEP = "nesting_too_deep"
    NUMBER_TOO_PRECISE = "number_too_precise"
    NUMBER_OUT_OF_RANGE = "number_out_of_range"
    EMPTY_ATTRIBUTE_NAME = "empty_attribute_name"
    LONE_SURROGATE = "lone_surrogate"
    DUPLICATE_NATURAL_KEY = "duplicate_natural_key"
    REFUSED_BY_DYNAMODB = "refused_by_dynamodb"
    EMPTY_OBJECT = "empty_object"
    UNREADABLE_OBJECT = "unreadable_object"
    UNSUPPORTED_FORMAT = "unsupported_format"
