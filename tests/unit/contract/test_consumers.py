"""The consumer registry is data (`consumers/*.json`): loading and validating entries, pattern helpers,
naming, the routing suffixes taken from the reader's format table, importability without aws_cdk."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eventpipe.contract.consumers import (
    READABLE,
    Consumer,
    LambdaTarget,
    QueueTarget,
    RegistryError,
    RetryOverride,
    any_object_event,
    consumer_by_name,
    load_consumers,
    object_created,
    object_deleted,
    validate_registry,
)
from eventpipe.contract.paths import PROJECT_ROOT as REPO_ROOT
from functions.core.domain.formats import READABLE_SUFFIXES, detect_format

CONSUMERS = load_consumers(readable_suffixes=READABLE_SUFFIXES)


def test_registry_ships_ingest_delete_sync_and_audit() -> None:
    assert {"ingest", "delete-sync", "audit"} <= {c.name for c in CONSUMERS}
    assert isinstance(consumer_by_name("ingest", CONSUMERS).target, LambdaTarget)
    assert isinstance(consumer_by_name("delete-sync", CONSUMERS).target, LambdaTarget)
    assert isinstance(consumer_by_name("audit", CONSUMERS).target, QueueTarget)


def test_ingest_pattern_takes_created_json_and_json_lines_also_gzipped() -> None:
    keys = consumer_by_name("ingest", CONSUMERS).pattern["detail"]["object"]["key"]

    assert consumer_by_name("ingest", CONSUMERS).pattern["detail-type"] == ["Object Created"]
    assert {k["suffix"] for k in keys} == {
        ".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz",
    }  # fmt: skip


def test_delete_sync_hears_the_deletion_of_every_key_ingest_reads_and_only_those() -> None:
    ingest, delete_sync = consumer_by_name("ingest", CONSUMERS), consumer_by_name("delete-sync", CONSUMERS)

    assert delete_sync.pattern["detail-type"] == ["Object Deleted"]
    assert delete_sync.pattern["detail"]["object"] == ingest.pattern["detail"]["object"]


def test_object_deleted_takes_a_prefix_and_suffixes_like_object_created() -> None:
    assert object_deleted(prefix="a/", suffixes=(".json",))["detail"]["object"]["key"] == [
        {"wildcard": "a/*.json"}
    ]
    assert object_deleted(suffixes=(".x",))["detail"]["object"]["key"] == [{"suffix": ".x"}]


def test_ingest_may_read_the_bucket_and_write_table_and_rejects() -> None:
    target = consumer_by_name("ingest", CONSUMERS).target

    assert isinstance(target, LambdaTarget)
    assert (target.reads_ingest_bucket, target.writes_table, target.writes_rejects) == (True, True, True)


def test_delete_sync_may_read_the_bucket_to_mirror_a_version_that_is_current_again() -> None:
    target = consumer_by_name("delete-sync", CONSUMERS).target

    assert isinstance(target, LambdaTarget)
    assert (target.reads_ingest_bucket, target.writes_rejects, target.writes_table) == (True, True, True)


def test_full_pattern_scopes_to_s3_and_the_bucket_without_mutating_the_entry() -> None:
    consumer = consumer_by_name("ingest", CONSUMERS)
    before = repr(consumer.pattern)

    full = consumer.full_pattern("my-bucket")

    assert full["source"] == ["aws.s3"]
    assert full["detail"]["bucket"] == {"name": ["my-bucket"]}
    assert full["detail"]["object"] == consumer.pattern["detail"]["object"]
    assert repr(consumer.pattern) == before


def test_ignore_replays_excludes_events_carrying_a_replay_name() -> None:
    consumer = Consumer(name="live-only", pattern=object_deleted(), target=QueueTarget(), ignore_replays=True)

    assert consumer.full_pattern("b")["replay-name"] == [{"exists": False}]
    assert "replay-name" not in consumer_by_name("ingest", CONSUMERS).full_pattern("b")


def test_prefix_and_suffix_together_become_one_wildcard_per_suffix() -> None:
    pattern = object_created(prefix="in*box/", suffixes=(".csv", ".tsv"))

    assert pattern["detail"]["object"]["key"] == [
        {"wildcard": "in\\*box/*.csv"},
        {"wildcard": "in\\*box/*.tsv"},
    ]


def test_prefix_only_and_no_filter() -> None:
    assert object_deleted(prefix="logs/")["detail"]["object"]["key"] == [{"prefix": "logs/"}]
    assert object_created() == {"detail-type": ["Object Created"]}
    assert any_object_event() == {}
    assert any_object_event(prefix="a/") == {"detail": {"object": {"key": [{"prefix": "a/"}]}}}


def test_ingest_and_delete_sync_route_exactly_the_suffixes_the_reader_reads() -> None:
    """The one link between routing and reading: `"suffixes": "readable"` is functions' format table."""
    for name in ("ingest", "delete-sync"):
        routed = [
            key["suffix"] for key in consumer_by_name(name, CONSUMERS).pattern["detail"]["object"]["key"]
        ]

        assert routed == list(READABLE_SUFFIXES)
        assert all(detect_format(f"a/b{suffix}") is not None for suffix in routed)
    assert detect_format("a/b.csv") is None


def test_readable_suffixes_are_whatever_the_loader_is_given(tmp_path: Path) -> None:
    (tmp_path / "reader.json").write_text(
        json.dumps({"events": {"type": "created", "suffixes": READABLE}, "target": {"kind": "sqs"}})
    )

    (reader,) = load_consumers(readable_suffixes=(".csv",), directory=tmp_path)

    assert reader.pattern["detail"]["object"]["key"] == [{"suffix": ".csv"}]


def test_an_entry_becomes_a_consumer_named_after_its_file(tmp_path: Path) -> None:
    entry = {
        "description": "Thumbnails of uploaded images.",
        "events": {"type": "created", "prefix": "images/", "suffixes": [".png"]},
        "target": {"kind": "lambda", "memory_mb": 1024, "reads_ingest_bucket": True},
        "ignore_replays": True,
        "retry": {"max_retry_attempts": 3},
        "notes": "free text, ignored",
    }
    (tmp_path / "thumbnails.json").write_text(json.dumps(entry))

    (consumer,) = load_consumers(readable_suffixes=(), directory=tmp_path)

    assert consumer == Consumer(
        name="thumbnails",
        description="Thumbnails of uploaded images.",
        pattern=object_created(prefix="images/", suffixes=(".png",)),
        target=LambdaTarget(memory_mb=1024, reads_ingest_bucket=True),
        ignore_replays=True,
        retry=RetryOverride(max_retry_attempts=3),
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"events": {"type": "created"}}, "`target` needs a `kind`"),
        ({"events": {"type": "moved"}, "target": {"kind": "sqs"}}, "`events` needs a `type`"),
        ({"target": {"kind": "sqs"}}, "exactly one of `events` and `pattern`"),
        ({"events": {"type": "any", "suffixes": [".x"]}, "target": {"kind": "sqs"}}, "prefix only"),
        ({"events": {"type": "created"}, "target": {"kind": "sqs", "colour": 1}}, "kind sqs"),
        ({"events": {"type": "created"}, "target": {"preset": "fast"}}, "unknown target preset"),
        ({"events": {"type": "created"}, "target": {"kind": "sqs"}, "rule": 1}, "unknown field"),
        ({"events": {"type": "created"}, "target": {"kind": "sqs", "retention_days": 15}}, "1..14"),
    ],
)
def test_a_wrong_entry_is_refused_naming_its_file(tmp_path: Path, entry: Any, message: str) -> None:
    (tmp_path / "bad-one.json").write_text(json.dumps(entry))

    with pytest.raises(RegistryError, match=rf"^bad-one\.json: .*{re.escape(message)}"):
        load_consumers(readable_suffixes=(), directory=tmp_path)


def test_no_registry_folder_is_an_empty_registry(tmp_path: Path) -> None:
    assert load_consumers(readable_suffixes=(), directory=tmp_path / "absent") == ()


@pytest.mark.parametrize("name", ["Ingest", "delete_sync", "-x", "x-", "a--b", "9lives", "x" * 41])
def test_invalid_consumer_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="consumer name"):
        Consumer(name=name, pattern={}, target=QueueTarget())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LambdaTarget(memory_mb=64), "memory_mb must be 128..10240"),
        (lambda: LambdaTarget(timeout_seconds=901), "timeout_seconds must be 1..900"),
        (lambda: QueueTarget(retention_days=15), "retention_days must be 1..14"),
        (lambda: RetryOverride(max_retry_attempts=186), "max_retry_attempts must be 0..185"),
        (lambda: RetryOverride(max_event_age_seconds=59), "max_event_age_seconds must be 60..86400"),
    ],
)
def test_target_settings_outside_aws_limits_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_pattern_must_not_set_source() -> None:
    with pytest.raises(ValueError, match="must not set 'source'"):
        Consumer(name="x", pattern={"source": ["aws.s3"]}, target=QueueTarget())


def test_names_are_pascal_cased_for_outputs_and_mapped_to_function_folders() -> None:
    consumer = consumer_by_name("delete-sync", CONSUMERS)

    assert consumer.pascal_name == "DeleteSync"
    assert consumer.function_dir == "functions/delete_sync"
    assert consumer.handler == "functions.delete_sync.handler.lambda_handler"


def test_registry_refuses_duplicate_and_too_alike_names() -> None:
    twice = (Consumer(name="a", pattern={}, target=QueueTarget()),) * 2
    alike = (
        Consumer(name="search-index", pattern={}, target=QueueTarget()),
        Consumer(name="searchindex", pattern={}, target=QueueTarget()),
    )

    with pytest.raises(ValueError, match="already exists"):
        validate_registry(twice)
    with pytest.raises(ValueError, match="collides with existing 'search-index'"):
        validate_registry(alike)


def test_registry_is_importable_without_aws_cdk() -> None:
    code = (
        "import sys, eventpipe.contract.consumers; "
        "sys.exit(1 if any(m.startswith('aws_cdk') for m in sys.modules) else 0)"
    )

    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, check=False)

    assert done.returncode == 0, done.stderr


def test_every_lambda_consumer_has_its_handler_module() -> None:
    lambdas = [c for c in CONSUMERS if isinstance(c.target, LambdaTarget)]

    missing = [c.function_dir for c in lambdas if not (REPO_ROOT / c.function_dir / "handler.py").is_file()]

    assert missing == []


def test_registry_refuses_a_reserved_name() -> None:
    entry = Consumer(name="forwarder", pattern={}, target=QueueTarget())

    with pytest.raises(ValueError, match="reserved"):
        validate_registry((entry,))


def test_registry_refuses_a_pattern_eventbridge_would_reject() -> None:
    entry = Consumer(
        name="bad", pattern={"detail": {"object": {"key": [{"wildcard": "a**b"}]}}}, target=QueueTarget()
    )

    with pytest.raises(ValueError, match="consumer 'bad'"):
        validate_registry((entry,))


def test_shipped_registry_passes_validation() -> None:
    validate_registry(CONSUMERS)
