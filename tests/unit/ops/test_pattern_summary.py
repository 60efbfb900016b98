"""`eventpipe consumers` shows each rule pattern in a few words, so the table fits 80 columns."""

from __future__ import annotations

from typing import Any

import pytest

from eventpipe.ops.cli_support import describe

BUCKET_FILTER = {"bucket": {"name": ["eventpipe-dev-ingest"]}}
SUFFIXES = [{"suffix": s} for s in (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")]


@pytest.mark.parametrize(
    ("pattern", "summary"),
    [
        (
            {
                "source": ["aws.s3"],
                "detail-type": ["Object Deleted"],
                "detail": {**BUCKET_FILTER, "object": {"key": SUFFIXES}},
            },
            "Object Deleted; key ends .json(.gz) .jsonl(.gz) .ndjson(.gz)",
        ),
        ({"source": ["aws.s3"], "detail": BUCKET_FILTER}, "(every object event)"),
        (
            {
                "detail-type": ["Object Created"],
                "detail": {"object": {"key": [{"prefix": "in/"}], "size": [{"numeric": [">", 0]}]}},
            },
            'Object Created; key starts in/; {"detail":{"object":{"size":[{"numeric":[">", 0]}]}}}',
        ),
        (None, "-"),
    ],
    ids=["ingest-like", "every event", "unknown fields kept as JSON", "no pattern"],
)
def test_a_pattern_is_summarised_in_a_few_words(pattern: Any, summary: str) -> None:
    assert describe(pattern) == summary


def test_the_summary_of_a_registered_consumer_fits_two_lines_of_a_narrow_column() -> None:
    from eventpipe.ops.context import load_registry

    for consumer in load_registry():
        assert len(describe(consumer.full_pattern("eventpipe-dev-ingest"))) <= 64
