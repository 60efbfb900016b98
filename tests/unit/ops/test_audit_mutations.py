"""Operator behaviours a mutation audit found unguarded (issue 13), each proven against moto.

- A replay to several consumers sends every one of their rule ARNs in `FilterArns` (EventBridge API
  reference, ReplayDestination: "FilterArns — A list of ARNs for rules to replay events to"; omitted,
  the replay goes to every rule of the bus).
- `dlq redrive` of a Lambda consumer leaves another function's failure records in its failure queue.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from ops_fakes import Deployed, s3_event

from eventpipe.ops import replay
from eventpipe.ops.redrive import REDRIVEN, SKIPPED, Redrive, SqsDeliverer


@pytest.mark.parametrize(
    ("consumers", "prefixes"),
    [
        (("ingest", "audit"), ("Ingest", "Audit")),
        (("delete-sync", "ingest", "audit"), ("DeleteSync", "Ingest", "Audit")),
    ],
)
def test_a_replay_to_several_consumers_filters_on_every_one_of_their_rules(
    deployed: Deployed, consumers: tuple[str, ...], prefixes: tuple[str, ...]
) -> None:
    now = datetime.now(UTC)
    plan = replay.plan_replay(
        deployed.ctx,
        since=now - timedelta(hours=2),
        until=now - timedelta(hours=1),
        consumer_names=consumers,
        retention_days=30,
    )

    replay.start(deployed.ctx, plan)

    # What EventBridge (moto) recorded for the replay, not what the plan says it would send.
    destination = replay.describe(deployed.ctx, plan.name)["Destination"]
    assert destination["Arn"] == deployed.outputs["EventBusArn"]
    assert sorted(destination["FilterArns"]) == sorted(deployed.outputs[f"{p}RuleArn"] for p in prefixes)
    assert len(destination["FilterArns"]) == len(consumers)


def _foreign_failure_record(deployed: Deployed, queue_prefix: str, function_prefix: str) -> str:
    """A Lambda on-failure destination record of `function_prefix`'s function, in `queue_prefix`'s
    failure queue (a shared or misconfigured destination)."""
    record = {
        "version": "1.0",
        "timestamp": "2026-11-26T10:00:05.000Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": deployed.outputs[f"{function_prefix}TargetArn"] + ":$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": s3_event("in/theirs.json"),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "boom", "errorType": "RuntimeError"},
    }
    return str(
        deployed.sqs.send_message(
            QueueUrl=deployed.outputs[f"{queue_prefix}FailureQueueUrl"], MessageBody=json.dumps(record)
        )["MessageId"]
    )


def test_redrive_leaves_another_functions_failure_records_in_place(deployed: Deployed) -> None:
    ours = [s3_event(f"in/ours-{n}.json") for n in range(3)]
    for event in ours:
        deployed.add_failure_record("Ingest", event)
    theirs = [_foreign_failure_record(deployed, "Ingest", "DeleteSync") for _ in range(2)]
    ingest = deployed.ctx.deployed_consumer("ingest")
    # Deliveries land in a queue we can read back (the rule under test does not depend on the target).
    observed = SqsDeliverer(deployed.sqs, deployed.outputs["AuditQueueUrl"])

    summary = Redrive(deployed.sqs, ingest, observed, wait_seconds=0).run()

    assert (summary.count(REDRIVEN), summary.count(SKIPPED)) == (3, 2)
    skipped = {o.message_id: o.reason for o in summary.outcomes if o.result == SKIPPED}
    assert set(skipped) == set(theirs)
    assert all(
        f"failure record of function {deployed.outputs['DeleteSyncFunctionName']}" in str(r)
        for r in skipped.values()
    )
    assert sorted(e["id"] for e in deployed.drain("AuditQueueUrl")) == sorted(e["id"] for e in ours)
    left = deployed.drain("IngestFailureQueueUrl")
    assert [r["requestContext"]["functionArn"] for r in left] == [
        deployed.outputs["DeleteSyncTargetArn"] + ":$LATEST"
    ] * 2
