"""The rejects report model: one JSON Lines object per object version in the rejects bucket.

Key: `rejects/<source bucket>/<source key>/<sequencer>.jsonl` (sequencer without its padding;
`rejects/<source bucket>/_long-keys/<sha256 of key>/...` when that would exceed S3's 1,024 bytes).
The rejects bucket is not the ingest bucket, so a report can never trigger ingest.
Each line: {"position", "reason", "detail", "record", "record_truncated"}; `position` 0 means the
object as a whole. At most MAX_ENTRIES records are listed, then one `more_rejects_omitted` line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from functions.core.domain.readers import Malformed
from functions.core.domain.reasons import Reason

MAX_ENTRIES: Final = 1000
MAX_RAW_CHARS: Final = 2048
MAX_S3_KEY_BYTES: Final = 1024
_ALWAYS_CUT: Final = frozenset({Reason.LINE_TOO_LONG, Reason.ELEMENT_TOO_LARGE})


def report_key(bucket: str, key: str, sequencer: str) -> str:
    version = sequencer.rstrip("0") or "0"  # without the right padding (events.normalize_sequencer)
    candidate = f"rejects/{bucket}/{key}/{version}.jsonl"
    if len(candidate.encode()) <= MAX_S3_KEY_BYTES:
        return candidate
    # S3 keys stop at 1,024 bytes: very long source keys are named by their hash instead.
    return f"rejects/{bucket}/_long-keys/{hashlib.sha256(key.encode()).hexdigest()}/{version}.jsonl"


def _raw_text(raw: Any) -> tuple[str, bool]:
    """The record as text for the report, and whether it was cut."""
    if raw is None:
        return "", False
    if isinstance(raw, bytes):
        # Slice before decoding so a huge line is never decoded whole; 'replace' keeps it valid UTF-8.
        # At most 4 bytes a character: the slice holds at least MAX_RAW_CHARS characters when cut.
        text = raw[: MAX_RAW_CHARS * 4].decode("utf-8", "replace")
        return text, len(raw) > MAX_RAW_CHARS * 4 or len(text) > MAX_RAW_CHARS
    if isinstance(raw, Malformed):
        return _raw_text(raw.raw)
    try:
        text = json.dumps(raw, default=str, ensure_ascii=False)
    except RecursionError:  # an array element nested almost to the parser's limit: say so, do not fail
        text = "<nested too deeply to quote>"
    return text, len(text) > MAX_RAW_CHARS


def _json_line(entry: dict[str, Any]) -> str:
    """One report line, UTF-8 encodable whatever the entry holds: a lone surrogate (from a `\\ud800`
    escape in a record) cannot be encoded as UTF-8, so such a line is written with ASCII escapes."""
    line = json.dumps(entry, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(entry)
    return line


@dataclass(slots=True)
class RejectsReport:
    entries: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    def add(self, position: int, reason: str, detail: str, raw: Any = None) -> None:
        self.total += 1
        if len(self.entries) >= MAX_ENTRIES:
            return
        text, cut = _raw_text(raw)
        self.entries.append(
            {
                "position": position,
                "reason": reason,
                "detail": detail[:500],
                "record": text[:MAX_RAW_CHARS],
                # a line or element over 1 MiB arrives as a prefix of itself: it is always cut
                "record_truncated": cut or reason in _ALWAYS_CUT,
            }
        )

    def lines(self) -> Iterator[str]:
        for entry in self.entries:
            yield _json_line(entry)
        omitted = self.total - len(self.entries)
        if omitted:
            yield json.dumps(
                {
                    "position": None,
                    "reason": "more_rejects_omitted",
                    "detail": f"{omitted} more rejected records are not listed",
                    "record": "",
                    "record_truncated": False,
                }
            )

    def render(self) -> bytes:
        return ("\n".join(self.lines()) + "\n").encode("utf-8")
