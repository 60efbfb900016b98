"""`eventpipe pattern test`: the consumers' deployed patterns, evaluated offline, answered by exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from eventpipe.contract.errors import UsageError
from eventpipe.contract.patterns import validate_pattern
from eventpipe.ops.context import load_registry
from eventpipe.ops.main import app

CONSUMERS = load_registry()
BUCKET = "eventpipe-dev-ingest"
KNOWN = ", ".join(consumer.name for consumer in CONSUMERS)


def s3_event(
    detail_type: str = "Object Created", key: str = "in/data.json", bucket: str = BUCKET
) -> dict[str, Any]:
    created = detail_type == "Object Created"
    obj: dict[str, Any] = {"key": key, "sequencer": "0055AED6DCD90281E5"}
    if created:
        obj |= {"size": 12, "etag": "b1946ac92492d2347c6235b4d2611184"}
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": obj,
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "reason": "PutObject" if created else "DeleteObject",
    }
    if not created:
        detail["deletion-type"] = "Permanently Deleted"
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-26T18:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }


@pytest.fixture(autouse=True)
def no_local_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate from a local mode another process may be running from the project root."""
    monkeypatch.setattr("eventpipe.ops.context.PROJECT_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_event(directory: Path, event: Any, name: str = "event.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(event), encoding="utf-8")
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["pattern", "test", *args])


def test_every_registered_consumer_pattern_is_valid_for_eventbridge() -> None:
    for consumer in CONSUMERS:
        validate_pattern(consumer.full_pattern(BUCKET))


# (event detail-type, key, consumer, reaches it?) — the routing table of docs/architecture.md
ROUTING = [
    ("Object Created", "in/data.json", "ingest", True),
    ("Object Created", "in/data.jsonl.gz", "ingest", True),
    ("Object Created", "in/data.ndjson", "ingest", True),
    ("Object Created", "in/notes.txt", "ingest", False),
    ("Object Created", "in/data.json", "delete-sync", False),
    ("Object Created", "in/notes.txt", "audit", True),
    ("Object Deleted", "in/data.json", "ingest", False),
    ("Object Deleted", "in/data.json", "delete-sync", True),
    ("Object Deleted", "in/data.json", "audit", True),
]


@pytest.mark.parametrize(("detail_type", "key", "consumer", "reaches"), ROUTING)
def test_exit_code_says_whether_the_event_reaches_the_consumer(
    tmp_path: Path, detail_type: str, key: str, consumer: str, reaches: bool
) -> None:
    event_file = write_event(tmp_path, s3_event(detail_type, key))
    result = invoke("--consumer", consumer, str(event_file))
    assert result.exit_code == (0 if reaches else 1), result.output
    assert result.output.startswith("match:" if reaches else "no match:")


def test_without_bucket_or_local_mode_the_event_bucket_is_assumed_and_said(tmp_path: Path) -> None:
    result = invoke("--consumer", "audit", str(write_event(tmp_path, s3_event(bucket="some-bucket"))))
    assert result.exit_code == 0
    assert "assuming the event's bucket is the stack's" in result.output


def test_bucket_option_scopes_the_rule_and_the_reason_names_the_field(tmp_path: Path) -> None:
    result = invoke(
        "--consumer", "ingest", str(write_event(tmp_path, s3_event())), "--bucket", "other-bucket"
    )
    assert result.exit_code == 1
    assert 'detail.bucket.name = "eventpipe-dev-ingest" does not match ["other-bucket"]' in result.output


def test_a_running_local_mode_does_not_change_the_answer(tmp_path: Path) -> None:
    # The answer depends on the command line and the file only, never on an emulator that happens to run.
    state = {"endpoint": "http://127.0.0.1:1", "pid": os.getpid(), "outputs": {"BucketName": "local-bucket"}}
    (tmp_path / ".eventpipe" / "local").mkdir(parents=True)
    (tmp_path / ".eventpipe" / "local" / "state.json").write_text(json.dumps(state), encoding="utf-8")
    result = invoke("--consumer", "audit", str(write_event(tmp_path, s3_event())), "--json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert (report["bucket"], report["bucket_source"]) == (BUCKET, "event")


def test_without_a_consumer_every_consumer_is_answered_with_its_reason(tmp_path: Path) -> None:
    result = invoke(str(write_event(tmp_path, s3_event("Object Created", "in/notes.txt"))))

    assert result.exit_code == 0  # audit takes every event of the bucket
    lines = result.output.splitlines()
    assert "  ✓ audit" in lines
    assert any(line.startswith("  ✗ ingest: detail.object.key") for line in lines), result.output
    assert any(line.startswith('  ✗ delete-sync: detail-type = "Object Created"') for line in lines)


def test_without_a_consumer_json_lists_every_consumer_and_the_matching_ones(tmp_path: Path) -> None:
    result = invoke(str(write_event(tmp_path, s3_event("Object Deleted", "in/data.json"))), "--json")

    report = json.loads(result.output)
    assert sorted(report["matched"]) == ["audit", "delete-sync"]
    assert sorted(r["consumer"] for r in report["results"]) == sorted(c.name for c in CONSUMERS)


def test_an_event_no_consumer_takes_exits_1(tmp_path: Path) -> None:
    result = invoke(str(write_event(tmp_path, s3_event())), "--bucket", "another-bucket")
    assert result.exit_code == 1
    assert "✓" not in result.output


def test_an_ad_hoc_pattern_file_is_checked_as_written(tmp_path: Path) -> None:
    pattern = tmp_path / "rule.json"
    pattern.write_text(json.dumps({"detail": {"object": {"key": [{"suffix": ".json"}]}}}), encoding="utf-8")
    event = write_event(tmp_path, s3_event(key="in/data.json"))
    other = write_event(tmp_path, s3_event(key="in/data.csv"), name="other.json")

    assert invoke("--pattern", str(pattern), str(event)).exit_code == 0
    result = invoke("--pattern", str(pattern), str(other), "--json")
    assert result.exit_code == 1
    [reason] = json.loads(result.output)["reasons"]
    assert reason.startswith('detail.object.key = "in/data.csv" does not match')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--consumer", "ingest", "--pattern", "p.json"], "--consumer and --pattern are alternatives"),
        (["--pattern", "bad.json"], "EventBridge would reject"),
    ],
    ids=["both", "invalid pattern"],
)
def test_pattern_option_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "p.json").write_text("{}", encoding="utf-8")
    (tmp_path / "bad.json").write_text(
        json.dumps({"detail": {"n": [{"numeric": [">", 5, "<", 1]}]}}), encoding="utf-8"
    )
    result = invoke(*args, str(write_event(tmp_path, s3_event())))
    assert isinstance(result.exception, UsageError)
    assert message in str(result.exception)


def test_json_output_carries_verdict_pattern_and_reasons(tmp_path: Path) -> None:
    result = invoke("--consumer", "delete-sync", str(write_event(tmp_path, s3_event())), "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["matched"] is False
    assert report["consumer"] == "delete-sync"
    assert report["pattern"]["source"] == ["aws.s3"]
    assert report["pattern"]["detail"]["bucket"]["name"] == [BUCKET]
    assert report["reasons"] == ['detail-type = "Object Created" does not match ["Object Deleted"]']
    assert report["warnings"] == []


def test_an_event_that_is_not_aws_shaped_gets_a_warning(tmp_path: Path) -> None:
    moto_like = s3_event()
    moto_like["detail"]["reason"] = "ObjectCreated"
    result = invoke("--consumer", "ingest", str(write_event(tmp_path, moto_like)), "--json")
    assert result.exit_code == 0
    assert "reason" in json.loads(result.output)["warnings"][0]


@pytest.mark.parametrize(
    ("consumer", "content", "message"),
    [
        ("nope", json.dumps(s3_event()), f"unknown consumer 'nope'; known consumers: {KNOWN}"),
        ("ingest", "{not json", "is not valid JSON"),
        ("ingest", "[1, 2]", "must hold one JSON object"),
        ("ingest", json.dumps({"source": "aws.s3"}), "no detail.bucket.name: pass --bucket NAME"),
    ],
    ids=["unknown consumer", "invalid JSON", "not an object", "no bucket anywhere"],
)
def test_usage_errors(tmp_path: Path, consumer: str, content: str, message: str) -> None:
    event_file = tmp_path / "event.json"
    event_file.write_text(content, encoding="utf-8")
    result = invoke("--consumer", consumer, str(event_file))
    assert isinstance(result.exception, UsageError)
    assert message in str(result.exception)


def test_unreadable_event_file_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("--consumer", "ingest", str(tmp_path / "missing.json"))
    assert isinstance(result.exception, UsageError)
    assert "cannot read event file" in str(result.exception)


def test_console_script_reports_usage_errors_in_one_line_with_exit_2(tmp_path: Path) -> None:
    event_file = write_event(tmp_path, s3_event())
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from eventpipe.ops.main import main; main()",
            "pattern",
            "test",
            "-c",
            "nope",
            str(event_file),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        f"error: unknown consumer 'nope'; known consumers: {KNOWN}"
    ]


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(app, ["pattern", "test", "--help"])
    assert result.exit_code == 0
    assert "eventpipe pattern test --consumer ingest" in result.output
