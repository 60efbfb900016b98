"""The operator CLI against the embedded AWS with the real stack deployed: replays reach only the
chosen consumers, and redrives re-deliver dead letters only to the consumer that failed.

AWS behaviour reproduced: StartReplay with FilterArns delivers archived events (stamped with
`replay-name`) only to those rules; a Lambda consumer's failures end in its on-failure destination
and an asynchronous Invoke with the original event processes them again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import pytest
import typer
from typer.testing import CliRunner

from eventpipe.local.emulator import Emulator
from eventpipe.ops.cli import register
from tests.e2e.flows import Pipeline, people
from tests.integration.conftest import Mailbox

pytestmark = pytest.mark.integration

Run = Callable[..., Any]


@pytest.fixture
def pipeline(emulator: Emulator, aws: Callable[[str], Any], settle: Callable[[], None]) -> Pipeline:
    return Pipeline(client=aws, outputs=emulator.outputs, settle=settle)


@pytest.fixture
def ops(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`ops("dlq", "list", "--json")` runs the command against this emulator, discovered like
    `EVENTPIPE_LOCAL=1 eventpipe ...` discovers a running local mode (its state file)."""
    monkeypatch.setenv("EVENTPIPE_LOCAL", "1")
    monkeypatch.setenv("EVENTPIPE_LOCAL_STATE_DIR", str(emulator.state_dir))
    app = typer.Typer()
    register(app)
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, f"eventpipe {' '.join(args)}: {result.output}"
        return json.loads(result.stdout) if "--json" in args else result.stdout

    return run


def object_key(event: dict[str, Any]) -> str:
    return unquote_plus(event.get("detail", {}).get("object", {}).get("key", ""))


def items_of(aws: Callable[[str], Any], outputs: dict[str, str], key: str) -> list[dict[str, Any]]:
    """The record items `key` owns, whole (provenance included), in key order."""
    dynamodb = aws("dynamodb")
    keys = dynamodb.query(
        TableName=outputs["TableName"],
        IndexName="by-owner",
        KeyConditionExpression="#o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": f"{outputs['BucketName']}/{key}"}},
    )["Items"]
    found = [
        dynamodb.get_item(
            TableName=outputs["TableName"], Key={"pk": k["pk"], "sk": k["sk"]}, ConsistentRead=True
        )
        for k in keys
    ]
    return sorted((f["Item"] for f in found if "data" in f.get("Item", {})), key=lambda i: i["sk"]["S"])


def test_replay_of_a_window_reaches_ingest_only_and_leaves_the_table_unchanged(
    ops: Run,
    pipeline: Pipeline,
    aws: Callable[[str], Any],
    outputs: dict[str, str],
    audit_mailbox: Mailbox,
) -> None:
    key = pipeline.key("replayed.jsonl")
    records = people(3, tag="replay")
    since = datetime.now(UTC) - timedelta(seconds=1)
    pipeline.put_records(key, records)
    pipeline.records_matching(key, records)
    pipeline.settle()
    until = datetime.now(UTC)
    before = items_of(aws, outputs, key)
    assert len([b for b in audit_mailbox.bodies() if object_key(b) == key]) == 1

    replay = ops(
        "replay", "start", "--since", since.isoformat(), "--until", until.isoformat(),
        "--consumer", "ingest", "--wait", "--json",
    )  # fmt: skip
    pipeline.settle()

    assert replay["state"] == "COMPLETED"
    assert replay["filter_arns"] == [outputs["IngestRuleArn"]]
    after = items_of(aws, outputs, key)
    # ingest processed the replayed event: its items now name the replay ...
    assert {item["replay_name"]["S"] for item in after} == {replay["replay_name"]}
    # ... and the table holds the same records (only the processing provenance moved).
    provenance = {"replay_name", "ingested_at"}

    def strip(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in item.items() if k not in provenance} for item in items]

    assert strip(after) == strip(before)
    # audit is another consumer: it did not see the replay at all.
    assert [b for b in audit_mailbox.bodies() if b.get("replay-name") == replay["replay_name"]] == []
    listed = ops("replay", "list", "--json")
    assert replay["replay_name"] in [item["replay_name"] for item in listed]
    status = ops("status", "--json")
    assert status["last_replay"]["replay_name"] == replay["replay_name"]
    assert status["archive"]["event_count"] >= 1


def test_after_a_change_in_ingest_a_replay_updates_the_table(
    ops: Run, pipeline: Pipeline, aws: Callable[[str], Any], outputs: dict[str, str]
) -> None:
    key = pipeline.key("fixed-later.json")
    records = people(2, tag="fixed")
    table = outputs["TableName"]
    pipeline.settle()
    already_failed = failure_queue_depth(aws, outputs)
    since = datetime.now(UTC) - timedelta(seconds=1)
    # Ingest as first deployed: broken (it writes to a table that does not exist), so the upload fails
    # through its retries into the failure queue and the table never gets its records.
    set_ingest_env(pipeline, aws, "TABLE_NAME", f"{table}-missing")
    try:
        aws("s3").put_object(Bucket=pipeline.bucket, Key=key, Body=json.dumps(records).encode())
        pipeline.eventually(
            lambda: True if failure_queue_depth(aws, outputs) >= already_failed + 1 else None,
            "the failed ingest in the failure queue",
            deadline_seconds=pipeline.failure_deadline_seconds,
        )
        assert pipeline.records(key) == []
    finally:
        set_ingest_env(pipeline, aws, "TABLE_NAME", table)  # the change (fix) is deployed
    until = datetime.now(UTC)

    ops(
        "replay",
        "start",
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
        "-c",
        "ingest",
        "--wait",
    )

    pipeline.records_matching(key, records)


def set_ingest_env(pipeline: Pipeline, aws: Callable[[str], Any], name: str, value: str) -> str:
    """Set one environment variable of the ingest function (how tests change its behaviour);
    returns the previous value."""
    lambda_client = aws("lambda")
    function = pipeline.outputs["IngestFunctionName"]
    variables = lambda_client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    lambda_client.update_function_configuration(
        FunctionName=function, Environment={"Variables": {**variables, name: value}}
    )

    def applied() -> bool | None:
        config = lambda_client.get_function_configuration(FunctionName=function)
        done = config.get("LastUpdateStatus") in (None, "Successful")
        return True if done and config["Environment"]["Variables"].get(name) == value else None

    pipeline.eventually(applied, f"{function} to get {name}={value}")
    return str(variables.get(name, ""))


def failure_queue_depth(aws: Callable[[str], Any], outputs: dict[str, str]) -> int:
    attributes = aws("sqs").get_queue_attributes(
        QueueUrl=outputs["IngestFailureQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_redrive_after_a_fault_delivers_to_the_failed_consumer_only_and_loses_nothing(
    ops: Run,
    pipeline: Pipeline,
    aws: Callable[[str], Any],
    outputs: dict[str, str],
    audit_mailbox: Mailbox,
) -> None:
    keys = [pipeline.key("redriven-1.jsonl"), pipeline.key("redriven 2.jsonl")]
    records = {key: people(2, tag=key) for key in keys}
    table = outputs["TableName"]
    pipeline.settle()
    already_failed = failure_queue_depth(aws, outputs)

    set_ingest_env(pipeline, aws, "TABLE_NAME", f"{table}-missing")  # the fault
    try:
        for key in keys:
            pipeline.put_records(key, records[key])
        pipeline.eventually(
            lambda: True if failure_queue_depth(aws, outputs) >= already_failed + 2 else None,
            "both failures in the failure queue",
            deadline_seconds=pipeline.failure_deadline_seconds,
        )
    finally:
        set_ingest_env(pipeline, aws, "TABLE_NAME", table)  # the fault is removed
    pipeline.settle()
    assert all(pipeline.records(key) == [] for key in keys)

    peeked = ops("dlq", "peek", "--consumer", "ingest", "--per-queue", "50", "--json")
    ours = [
        letter for letter in peeked if letter["object_key"] and unquote_plus(letter["object_key"]) in keys
    ]
    assert len(ours) == 2
    assert {letter["queue"] for letter in ours} == {"failures"}
    assert all(letter["error_code"] and letter["error_message"] for letter in ours)
    listed = {(row["consumer"], row["queue"]): row for row in ops("dlq", "list", "--json")}
    assert listed[("ingest", "failures")]["depth"] == already_failed + 2
    assert listed[("ingest", "failures")]["oldest_age_seconds"] is not None

    # Interrupted halfway (here: stopped by --limit): the rest stays queued, nothing is lost.
    first = ops("dlq", "redrive", "--consumer", "ingest", "--limit", "1", "--json")
    assert (first["redriven"], first["failed"]) == (1, 0)
    assert failure_queue_depth(aws, outputs) == already_failed + 1
    rest = ops("dlq", "redrive", "--consumer", "ingest", "--json")
    assert rest["failed"] == 0
    assert failure_queue_depth(aws, outputs) == 0

    for key in keys:
        pipeline.records_matching(key, records[key])
    pipeline.settle()
    for key in keys:  # audit saw each upload once: the redrive never went through the bus
        assert len([body for body in audit_mailbox.bodies() if object_key(body) == key]) == 1
    consumers = {row["name"]: row for row in ops("consumers", "--json")}
    assert consumers["ingest"]["failure_queue_depth"] == 0
