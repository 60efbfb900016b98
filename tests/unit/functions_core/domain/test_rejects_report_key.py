"""Where a rejects report goes: under the source key while that fits S3's 1,024-byte key limit, under
the key's SHA-256 when it does not (S3 user guide, "Naming Amazon S3 objects": a key name is a
sequence of Unicode characters whose UTF-8 encoding is at most 1,024 bytes long)."""

from __future__ import annotations

import hashlib

from functions.core.domain.rejects_report import MAX_S3_KEY_BYTES, report_key

BUCKET = "eventpipe-dev-ingest"
SEQUENCER = "0055AED6DCD9028100"  # reported without its right padding: 0055AED6DCD90281


def _key_making_candidate(size: int, filler: str = "a") -> str:
    """A source key whose embedded report key is exactly `size` bytes (`filler` may be multi-byte)."""
    frame = len(f"rejects/{BUCKET}//0055AED6DCD90281.jsonl".encode())
    width = len(filler.encode())
    assert (size - frame) % width == 0
    return filler * ((size - frame) // width)


def _fallback(key: str) -> str:
    return f"rejects/{BUCKET}/_long-keys/{hashlib.sha256(key.encode()).hexdigest()}/0055AED6DCD90281.jsonl"


def test_a_source_key_too_long_to_embed_is_named_by_its_hash() -> None:
    key = "people/" + "x" * 1100 + ".jsonl"

    reported = report_key(BUCKET, key, SEQUENCER)

    assert reported == _fallback(key)
    assert len(reported.encode()) <= MAX_S3_KEY_BYTES


def test_the_limit_is_1024_bytes_of_the_whole_report_key() -> None:
    fits = _key_making_candidate(MAX_S3_KEY_BYTES)
    too_long = _key_making_candidate(MAX_S3_KEY_BYTES + 1)

    assert report_key(BUCKET, fits, SEQUENCER) == f"rejects/{BUCKET}/{fits}/0055AED6DCD90281.jsonl"
    assert report_key(BUCKET, too_long, SEQUENCER) == _fallback(too_long)


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    # 3 bytes a character: far fewer than 1,024 characters, yet over 1,024 bytes.
    frame = len(f"rejects/{BUCKET}//0055AED6DCD90281.jsonl".encode())
    key = "€" * ((MAX_S3_KEY_BYTES - frame) // 3 + 1)
    assert len(f"rejects/{BUCKET}/{key}/0055AED6DCD90281.jsonl") < MAX_S3_KEY_BYTES

    assert report_key(BUCKET, key, SEQUENCER) == _fallback(key)


def test_distinct_long_keys_get_distinct_reports() -> None:
    first, second = "a" * 1100, "a" * 1099 + "b"

    assert report_key(BUCKET, first, SEQUENCER) != report_key(BUCKET, second, SEQUENCER)
