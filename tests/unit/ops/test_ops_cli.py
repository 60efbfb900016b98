"""The commands as an operator runs them: --json output, exit codes, one-line errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from ops_fakes import Deployed, s3_event
from typer.testing import CliRunner

from eventpipe.ops import cli, cli_support, replay
from functions.core.domain.byte_ranges import ByteRange
from functions.core.domain.events import ObjectEvent
from functions.core.domain.object_state import ObjectState
from functions.core.domain.range_task import RangeTask


@pytest.fixture
def run(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke `eventpipe ...` with discovery pointed at the fake stack; returns the click Result."""
    requested: dict[str, Any] = {}

    def fake_resolve(**kwargs: Any) -> Any:
        requested.update(kwargs)
        return deployed.ctx

    monkeypatch.setattr(cli_support, "resolve_context", fake_resolve)
    app = typer.Typer()
    cli.register(app)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(app, list(args))
        result.requested = dict(requested)
        return result

    return invoke


def test_consumers_json_lists_each_with_depths_and_rule_state(run: Any, deployed: Deployed) -> None:
    deployed.add_dead_letter("Ingest", s3_event("a.json"))
    deployed.add_failure_record("Ingest", s3_event("b.json"))
    deployed.add_failure_record("Ingest", s3_event("c.json"))

    result = run("consumers", "--json", "--stack", "eventpipe-dev", "--region", "eu-west-1")

    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert list(rows) == ["audit", "delete-sync", "ingest"]  # the registry's name order
    assert rows["ingest"]["dlq_depth"] == 1
    assert rows["ingest"]["failure_queue_depth"] == 2
    assert rows["ingest"]["target"] == "lambda:eventpipe-dev-ingest"
    assert rows["audit"]["target"] == "sqs:eventpipe-dev-audit"
    assert rows["audit"]["failure_queue_depth"] is None
    assert {row["rule_state"] for row in rows.values()} == {"ENABLED"}
    assert rows["ingest"]["pattern"] == {"source": ["aws.s3"]}  # the deployed rule's, not the registry's
    assert result.requested == {
        "stack": "eventpipe-dev",
        "region": "eu-west-1",
        "profile": None,
        "local": False,
    }


def test_consumers_table_renders(run: Any) -> None:
    result = run("consumers")

    assert result.exit_code == 0
    assert "delete-sync" in result.stdout
    assert "ENABLED" in result.stdout


def test_dlq_list_json_has_every_queue_with_depth_and_age(run: Any, deployed: Deployed) -> None:
    deployed.add_dead_letter("Audit", s3_event("a.json"))

    result = run("dlq", "list", "--json")

    assert result.exit_code == 0, result.output
    rows = {(row["consumer"], row["queue"]): row for row in json.loads(result.stdout)}
    assert set(rows) == {
        ("ingest", "dlq"),
        ("ingest", "failures"),
        ("delete-sync", "dlq"),
        ("delete-sync", "failures"),
        ("audit", "dlq"),
        ("forwarder", "dlq"),
        ("range-worker", "tasks"),
    }
    assert rows[("audit", "dlq")]["depth"] == 1
    assert rows[("audit", "dlq")]["oldest_age_seconds"] is not None
    assert rows[("ingest", "dlq")]["oldest_age_seconds"] is None


def test_dlq_peek_json_shows_reason_and_object(run: Any, deployed: Deployed) -> None:
    event = s3_event("in/x y.json", event_id="ev-1")
    deployed.add_dead_letter("Ingest", event, code="SDK_CLIENT_ERROR")

    result = run("dlq", "peek", "--consumer", "ingest", "--json")

    assert result.exit_code == 0, result.output
    [letter] = json.loads(result.stdout)
    assert letter["event_id"] == "ev-1"
    assert letter["object_key"] == "in/x y.json"
    assert letter["error_code"] == "SDK_CLIENT_ERROR"
    assert letter["rule_arn"] == deployed.outputs["IngestRuleArn"]
    assert deployed.depth("IngestDlqUrl") == 1


def test_dlq_redrive_json_summary(run: Any, deployed: Deployed) -> None:
    deployed.add_dead_letter("Audit", s3_event("a.json"))
    deployed.sqs.send_message(QueueUrl=deployed.url("AuditDlqUrl"), MessageBody="garbage")

    result = run("dlq", "redrive", "--consumer", "audit", "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["redriven"], summary["failed"], summary["skipped"]) == (1, 0, 1)
    assert summary["target"] == deployed.url("AuditQueueUrl")


def test_dlq_redrive_dry_run_table(run: Any, deployed: Deployed) -> None:
    deployed.add_dead_letter("Audit", s3_event("a.json"))

    result = run("dlq", "redrive", "-c", "audit", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "1 would be redriven, 0 failed, 0 skipped" in result.stdout
    assert deployed.depth("AuditDlqUrl") == 1


def range_task() -> dict[str, Any]:
    """A range task as ingest's fan-out sends it (functions/core/domain/range_task.py writes the body)."""
    task = RangeTask(
        event=ObjectEvent(
            event_id="ev-9",
            detail_type="Object Created",
            bucket="eventpipe-dev-ingest",
            key="big/part 1.jsonl",
            sequencer="0A2",
            reason="PutObject",
            size=200,
        ),
        token="lease-token",
        prior=ObjectState(),
        dataset="events",
        ingested_at="2026-11-30T06:00:00Z",
        ranges=2,
        byte_range=ByteRange(1, 100, 200),
        newlines_before=7,
    )
    body: dict[str, Any] = json.loads(task.to_json())
    return body


RANGE_TASK = range_task()


def test_dlq_peek_shows_the_range_tasks_the_worker_failed_on(run: Any, deployed: Deployed) -> None:
    message_id = deployed.fail_range_task(RANGE_TASK)

    listed = run("dlq", "list", "--json")
    peeked = run("dlq", "peek", "-c", "range-worker", "--json")

    assert listed.exit_code == 0, listed.output
    rows = {(row["consumer"], row["queue"]): row for row in json.loads(listed.stdout)}
    assert rows[("range-worker", "tasks")]["depth"] == 1
    assert rows[("range-worker", "tasks")]["url"] == deployed.url("RangeWorkerDlqUrl")
    assert peeked.exit_code == 0, peeked.output
    [letter] = json.loads(peeked.stdout)
    assert (letter["queue"], letter["message_id"], letter["problem"]) == ("tasks", message_id, None)
    assert (letter["object_key"], letter["event_id"]) == ("big/part 1.jsonl", "ev-9")
    assert deployed.depth("RangeWorkerDlqUrl") == 1  # peek removes nothing


def test_dlq_redrive_sends_dead_range_tasks_back_to_the_work_queue(run: Any, deployed: Deployed) -> None:
    deployed.fail_range_task(RANGE_TASK)
    deployed.sqs.send_message(QueueUrl=deployed.url("RangeWorkerDlqUrl"), MessageBody="not json")

    result = run("dlq", "redrive", "-c", "range-worker", "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["redriven"], summary["failed"], summary["skipped"]) == (1, 0, 1)
    assert summary["target"] == deployed.url("RangeWorkerQueueUrl")
    [redriven] = deployed.drain("RangeWorkerQueueUrl")  # the task itself, nothing else
    assert redriven == RANGE_TASK
    assert RangeTask.from_json(json.dumps(redriven)).byte_range == ByteRange(1, 100, 200)
    assert deployed.depth("RangeWorkerDlqUrl") == 1  # only the unparseable message stays


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("dlq", "redrive", "--consumer", "nope"),
            2,
            "error: unknown consumer 'nope' (known: audit, delete-sync, ingest)",
        ),
        (("dlq", "peek", "--consumer", "nope"), 2, "error: unknown consumer 'nope'"),
        (
            ("dlq", "redrive", "--consumer", "forwarder"),
            2,
            "PutEvents refuses aws.* sources: re-copy the objects",
        ),
        (("replay", "start", "--since", "-1h", "--until", "-2h"), 2, "must be before --until"),
        (
            ("replay", "start", "--since", "-1h", "--until", "tomorrow"),
            2,
            "error: cannot read time 'tomorrow'",
        ),
        (
            ("replay", "start", "--since", "-40d", "--until", "-1d"),
            2,
            "older than the archive's retention of 30 days",
        ),
        (
            ("replay", "start", "--since", "-2h", "--until", "-1h", "-c", "x"),
            2,
            "error: unknown consumer 'x'",
        ),
        (
            ("replay", "status", "missing"),
            1,
            "error: replay status: ResourceNotFoundException: Replay missing does not exist.",
        ),
    ],
)
def test_failures_are_one_line_on_stderr_with_an_exit_code(
    run: Any, args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(*args)

    assert result.exit_code == code
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_replay_start_wait_json_ends_completed(run: Any, deployed: Deployed) -> None:
    result = run("replay", "start", "--since", "-2h", "--until", "-10m", "-c", "ingest", "--wait", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["state"] == "COMPLETED"
    assert data["filter_arns"] == [deployed.outputs["IngestRuleArn"]]
    listed = json.loads(run("replay", "list", "--json").stdout)
    assert [item["replay_name"] for item in listed] == [data["replay_name"]]
    status = json.loads(run("replay", "status", data["replay_name"], "--json").stdout)
    assert status["state"] == "COMPLETED"


def test_status_json_shows_health(run: Any, deployed: Deployed) -> None:
    deployed.add_dead_letter("Audit", s3_event("a.json"))
    cloudwatch = deployed.ctx.client("cloudwatch")
    for name in ("eventpipe-dev-AuditDlqDepth", "eventpipe-dev-IngestDlqDepth", "other-stack-Alarm"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="ApproximateNumberOfMessagesVisible",
            Namespace="AWS/SQS",
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        if "Ingest" not in name:
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="DLQ not empty")

    result = run("status", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dead_letters"] == 1
    assert [alarm["name"] for alarm in data["alarms"]] == ["eventpipe-dev-AuditDlqDepth"]
    assert data["alarms_defined"] == 2  # the stack's two alarms, not the other stack's
    assert data["archive"]["name"] == "eventpipe-dev-archive"
    assert data["archive"]["retention_days"] == 30
    assert data["last_replay"] is None
    assert run("status").exit_code == 0


def test_every_command_has_help_with_examples(run: Any) -> None:
    commands = [
        ["consumers"],
        ["consumers", "new"],
        ["replay", "start"],
        ["replay", "list"],
        ["replay", "status"],
        ["replay", "cancel"],
        ["dlq", "list"],
        ["dlq", "peek"],
        ["dlq", "redrive"],
        ["status"],
        ["smoke"],
        ["empty-buckets"],
    ]
    for command in commands:
        result = run(*command, "--help")
        assert result.exit_code == 0, command
        assert "Example" in result.stdout, command


def test_replay_window_errors_come_before_any_aws_lookup(run: Any) -> None:
    """A wrong window is reported even where the stack cannot be reached (no discovery was tried)."""
    result = run("replay", "start", "--since", "-1h", "--until", "-2h", "--stack", "unreachable")

    assert result.exit_code == 2
    assert "must be before --until" in result.stderr
    assert result.requested == {}


@pytest.mark.parametrize("ended", ["CANCELLED", "FAILED"])
def test_replay_wait_exits_1_unless_the_replay_completed(
    run: Any, monkeypatch: pytest.MonkeyPatch, ended: str
) -> None:
    """`--wait` succeeds only on COMPLETED; a replay that ended otherwise is a one-line failure."""
    monkeypatch.setattr(
        replay, "describe", lambda ctx, name: {"ReplayName": name, "State": ended, "StateReason": "stopped"}
    )

    started = run("replay", "start", "--since", "-2h", "--until", "-1h", "-c", "ingest", "--wait")
    followed = run("replay", "status", "some-replay", "--wait")

    for result in (started, followed):  # stderr also carries the progress bar; the reason is one line
        assert result.exit_code == 1
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert line.startswith("error: replay ")
        assert line.endswith(f" ended {ended}: stopped")
    assert "error: replay some-replay ended" in followed.stderr
