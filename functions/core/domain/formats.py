"""The reader's format table: which key suffixes ingest reads, and as what.

Pure standard library and free of other imports, so the stack can route exactly the suffixes the reader
supports (`READABLE_SUFFIXES`) without loading the reader itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final


class Format(Enum):
    JSON = "json"
    JSON_LINES = "jsonl"


@dataclass(frozen=True, slots=True)
class ObjectFormat:
    kind: Format
    gzip: bool


# Each readable suffix and its format (lower case; matched case-insensitively).
FORMAT_BY_SUFFIX: Final = {".json": Format.JSON, ".jsonl": Format.JSON_LINES, ".ndjson": Format.JSON_LINES}
# Any readable suffix may be followed by this one: the object is gzip-compressed.
GZIP_SUFFIX: Final = ".gz"
# Every suffix ingest reads, compressed forms included (for routing: an object with another suffix is
# reported as `unsupported_format`).
READABLE_SUFFIXES: Final = tuple(
    suffix + compressed for suffix in FORMAT_BY_SUFFIX for compressed in ("", GZIP_SUFFIX)
)
# The same table as a sentence, for reports and messages.
SUPPORTED_DESCRIPTION: Final = f"supported: {', '.join(FORMAT_BY_SUFFIX)}, optionally {GZIP_SUFFIX}"


def detect_format(key: str) -> ObjectFormat | None:
    """The format implied by the key's suffix, or None when the suffix is not supported."""
    name = key.lower()
    compressed = name.endswith(GZIP_SUFFIX)
    if compressed:
        name = name[: -len(GZIP_SUFFIX)]
    for suffix, kind in FORMAT_BY_SUFFIX.items():
        if name.endswith(suffix):
            return ObjectFormat(kind, compressed)
    return None
