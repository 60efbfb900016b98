"""`eventpipe smoke` against the fake stack (in-process moto): nothing delivers events here, so these
tests cover the canary's routing, the hop a failure is blamed on, and the dead-letter rules. The
passing run and a broken ingest on the real pipeline are in tests/integration/test_smoke.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from ops_fakes import BUCKET, Deployed, s3_event
from typer.testing import CliRunner

from eventpipe.contract.consumers import consumer_by_name
from eventpipe.contract.patterns import matches
from eventpipe.ops import cli, cli_support
from eventpipe.ops.context import load_registry
from eventpipe.ops.smoke import (
    OBJECT_CREATED,
    OBJECT_DELETED,
    SMOKE_PREFIX,
    Smoke,
    SmokeFailure,
    canary_event,
    canary_key,
)
from functions.core.domain.datasets import DatasetRegistry


def test_the_canary_lands_in_the_default_dataset_and_reaches_ingest_delete_sync_and_audit() -> None:
    key = canary_key("run-1")

    assert key == f"{SMOKE_PREFIX}run-1.json"
    registry = DatasetRegistry.load()
    assert registry.for_key(key) == registry.default
    created = canary_event(BUCKET, key, OBJECT_CREATED)
    deleted = canary_event(BUCKET, key, OBJECT_DELETED)
    assert matches(consumer_by_name("ingest", load_registry()).full_pattern(BUCKET), created)
    assert matches(consumer_by_name("delete-sync", load_registry()).full_pattern(BUCKET), deleted)
    assert matches(consumer_by_name("audit", load_registry()).full_pattern(BUCKET), created)
    assert matches(consumer_by_name("audit", load_registry()).full_pattern(BUCKET), deleted)


@pytest.fixture
def stack(deployed: Deployed) -> Deployed:
    """The fake stack plus what smoke writes to and reads: a versioned bucket and the records table."""
    s3 = deployed.ctx.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    deployed.ctx.client("dynamodb").create_table(
        TableName=deployed.outputs["TableName"],
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "owner")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-owner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )
    # The shipped rules' patterns (the fake's rules match every S3 event).
    events = deployed.ctx.client("events")
    for name in ("ingest", "delete-sync", "audit"):
        events.put_rule(
            Name=f"eventpipe-dev-{name}",
            EventBusName=deployed.outputs["EventBusName"],
            EventPattern=json.dumps(consumer_by_name(name, load_registry()).full_pattern(BUCKET)),
        )
    return deployed


@pytest.fixture
def run(stack: Deployed, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli_support, "resolve_context", lambda **_: stack.ctx)
    app = typer.Typer()
    cli.register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["smoke", "--timeout", "1s", *args])


def test_when_no_consumer_sees_the_canary_the_bus_hop_is_named(run: Any, stack: Deployed) -> None:
    result = run("--json")

    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: bus/forwarder: no consumer received the canary's event within 1s")
    )
    report = json.loads(result.stdout)
    assert report["failed_hop"] == "bus/forwarder"
    assert [c["status"] for c in report["checks"] if c["hop"] in ("ingest", "audit")][:2] == ["failed"] * 2
    # Cleanup still deleted the canary: its key now reads as deleted.
    listing = stack.ctx.client("s3").list_object_versions(Bucket=BUCKET, Prefix=report["key"])
    assert [marker["IsLatest"] for marker in listing["DeleteMarkers"]] == [True]


def test_a_failure_record_of_the_canary_names_ingest_and_is_removed(stack: Deployed) -> None:
    smoke = Smoke(stack.ctx, timeout_seconds=5, run_id="broken")
    stack.add_failure_record("Ingest", s3_event(smoke.key))

    report = smoke.run()

    assert isinstance(report.failure, SmokeFailure)
    assert report.failure.hop == "ingest"
    assert str(report.failure) == (
        "ingest: the function failed on the canary (failure queue of ingest: table is throttled)"
    )
    assert stack.depth("IngestFailureQueueUrl") == 0  # the canary's dead letter is not left behind


def test_an_undeliverable_canary_at_the_forwarder_names_the_bus(stack: Deployed) -> None:
    smoke = Smoke(stack.ctx, timeout_seconds=5, run_id="lost")
    stack.sqs.send_message(
        QueueUrl=stack.outputs["ForwarderDlqUrl"], MessageBody=json.dumps(s3_event(smoke.key))
    )

    report = smoke.run()

    assert report.failure is not None
    assert str(report.failure).startswith("bus/forwarder: EventBridge could not deliver the canary")


def test_queues_with_real_dead_letters_fail_the_queues_hop(stack: Deployed) -> None:
    stack.add_dead_letter("Audit", s3_event("orders/1.json"))
    smoke = Smoke(stack.ctx, timeout_seconds=1)

    with pytest.raises(SmokeFailure, match=r"^queues: audit/dlq holds 1 message\(s\)"):
        smoke._check_queues()
    smoke._release_readers()

    assert stack.depth("AuditDlqUrl") == 1  # looked at, left for the operator


def test_dead_letters_of_earlier_canaries_are_not_a_failure_and_are_removed(stack: Deployed) -> None:
    stack.add_failure_record("Ingest", s3_event(canary_key("earlier-run")))
    smoke = Smoke(stack.ctx, timeout_seconds=1)

    smoke._check_queues()
    smoke._delete_canary_letters()

    assert next(c.detail for c in smoke.report.checks if c.hop == "queues") == (
        "1 dead letter(s) of earlier canaries, removed"
    )
    assert stack.depth("IngestFailureQueueUrl") == 0


def test_a_step_functions_consumer_is_seen_by_an_execution_naming_the_canary(stack: Deployed) -> None:
    sfn = stack.ctx.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="eventpipe-dev-workflow",
        definition=json.dumps({"StartAt": "Received", "States": {"Received": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/fn-role",
    )["stateMachineArn"]
    smoke = Smoke(stack.ctx, timeout_seconds=1, run_id="sfn")
    sfn.start_execution(stateMachineArn=machine, input=json.dumps(s3_event("orders/other.json")))

    assert not smoke._execution_started(machine)

    sfn.start_execution(stateMachineArn=machine, input=json.dumps(s3_event(smoke.key)))

    assert smoke._execution_started(machine)
