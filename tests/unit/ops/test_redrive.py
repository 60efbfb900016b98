"""Redrive re-delivers dead letters to the failed consumer only and never loses one."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from ops_fakes import Deployed, s3_event

from eventpipe.ops.redrive import (
    FAILED,
    REDRIVEN,
    SKIPPED,
    WOULD_REDRIVE,
    Deliverer,
    DeliveryError,
    LambdaDeliverer,
    Redrive,
    SqsDeliverer,
    deliverer_for,
)


@dataclass
class FlakyTarget:
    """A real SQS deliverer that breaks after `healthy` deliveries, with `fault` (raised, not returned).
    Deliveries run on the redrive's worker threads: the count is kept under a lock."""

    inner: Deliverer
    healthy: int
    fault: BaseException
    delivered: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def target(self) -> str:
        return self.inner.target

    def deliver(self, event: dict[str, Any]) -> None:
        with self._lock:
            if len(self.delivered) >= self.healthy:
                raise self.fault
            self.inner.deliver(event)
            self.delivered.append(event["id"])


def audit_redrive(deployed: Deployed, **options: Any) -> Redrive:
    consumer = deployed.ctx.deployed_consumer("audit")
    return Redrive(deployed.sqs, consumer, deliverer_for(deployed.ctx, consumer), wait_seconds=0, **options)


def test_sqs_consumer_gets_each_dead_letter_once_and_the_dlq_empties(deployed: Deployed) -> None:
    events = [s3_event(f"in/{n}.json") for n in range(12)]
    for event in events:
        deployed.add_dead_letter("Audit", event)

    summary = audit_redrive(deployed).run()

    assert summary.count(REDRIVEN) == 12
    assert summary.ok
    assert deployed.depth("AuditDlqUrl") == 0
    assert sorted(body["id"] for body in deployed.drain("AuditQueueUrl")) == sorted(e["id"] for e in events)


def test_redrive_goes_to_the_failed_consumer_only(deployed: Deployed) -> None:
    deployed.add_dead_letter("Ingest", s3_event("in/a.json"))
    deployed.add_failure_record("Ingest", s3_event("in/b.json"))

    consumer = deployed.ctx.deployed_consumer("ingest")
    summary = Redrive(deployed.sqs, consumer, deliverer_for(deployed.ctx, consumer), wait_seconds=0).run()

    assert summary.count(REDRIVEN) == 2
    assert summary.target == deployed.outputs["IngestFunctionName"]
    assert deployed.depth("IngestDlqUrl") == deployed.depth("IngestFailureQueueUrl") == 0
    assert deployed.drain("AuditQueueUrl") == []  # another consumer sees nothing


def test_lambda_redelivery_is_an_asynchronous_invoke(deployed: Deployed) -> None:
    client = deployed.ctx.client("lambda")
    deliverer = LambdaDeliverer(client, deployed.outputs["IngestFunctionName"])

    deliverer.deliver(s3_event("in/a.json"))  # raises unless Invoke answered 202

    with pytest.raises(DeliveryError, match="status 200"):
        LambdaDeliverer(_SyncInvoke(client), "fn").deliver(s3_event("in/a.json"))


@dataclass
class _SyncInvoke:
    """A Lambda client whose Invoke answers like a synchronous call (200): not an accepted event."""

    client: Any

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        return dict(self.client.invoke(**{**kwargs, "InvocationType": "RequestResponse"}))


def test_failure_records_redeliver_the_original_request_payload(deployed: Deployed) -> None:
    event = s3_event("in/a b.json")
    deployed.add_failure_record("Ingest", event)
    ingest = deployed.ctx.deployed_consumer("ingest")
    audit_queue = SqsDeliverer(deployed.sqs, deployed.outputs["AuditQueueUrl"])

    Redrive(deployed.sqs, ingest, audit_queue, wait_seconds=0).run()

    assert deployed.drain("AuditQueueUrl") == [event]


@pytest.mark.parametrize(("count", "healthy"), [(10, 4), (25, 14), (25, 0)])
def test_interrupted_redrive_loses_nothing_and_a_second_run_finishes(
    deployed: Deployed, count: int, healthy: int
) -> None:
    """Interrupted inside a batch (the first, or the second of three receives): the deliveries already
    accepted are deleted, every other message stays, and a second run delivers exactly those."""
    events = [s3_event(f"in/{n}.json") for n in range(count)]
    for event in events:
        deployed.add_dead_letter("Audit", event)
    consumer = deployed.ctx.deployed_consumer("audit")
    flaky = FlakyTarget(deliverer_for(deployed.ctx, consumer), healthy=healthy, fault=KeyboardInterrupt())

    with pytest.raises(KeyboardInterrupt):
        Redrive(deployed.sqs, consumer, flaky, wait_seconds=0).run()

    delivered = [body["id"] for body in deployed.drain("AuditQueueUrl")]
    assert sorted(delivered) == sorted(flaky.delivered)
    assert len(delivered) == healthy
    assert deployed.depth("AuditDlqUrl") == count - healthy
    second = audit_redrive(deployed).run()
    assert second.count(REDRIVEN) == count - healthy
    delivered += [body["id"] for body in deployed.drain("AuditQueueUrl")]
    assert sorted(delivered) == sorted(e["id"] for e in events)  # each exactly once
    assert deployed.depth("AuditDlqUrl") == 0


def test_refused_deliveries_stay_in_the_queue_and_are_counted_failed(deployed: Deployed) -> None:
    for n in range(5):
        deployed.add_dead_letter("Audit", s3_event(f"in/{n}.json"))
    consumer = deployed.ctx.deployed_consumer("audit")
    flaky = FlakyTarget(
        deliverer_for(deployed.ctx, consumer), healthy=2, fault=DeliveryError("target refused")
    )

    summary = Redrive(deployed.sqs, consumer, flaky, wait_seconds=0).run()

    assert (summary.count(REDRIVEN), summary.count(FAILED)) == (2, 3)
    assert not summary.ok
    assert {o.reason for o in summary.outcomes if o.result == FAILED} == {"target refused"}
    assert deployed.depth("AuditDlqUrl") == 3


def test_unparseable_and_foreign_messages_are_skipped_and_left_in_place(deployed: Deployed) -> None:
    deployed.sqs.send_message(QueueUrl=deployed.outputs["AuditDlqUrl"], MessageBody="not json")
    deployed.sqs.send_message(QueueUrl=deployed.outputs["AuditDlqUrl"], MessageBody=json.dumps({"a": 1}))
    deployed.add_dead_letter("Ingest", s3_event("in/x.json"))
    moved = deployed.sqs.receive_message(
        QueueUrl=deployed.outputs["IngestDlqUrl"], MessageAttributeNames=["All"]
    )
    message = moved["Messages"][0]
    deployed.sqs.send_message(
        QueueUrl=deployed.outputs["AuditDlqUrl"],
        MessageBody=message["Body"],
        MessageAttributes=message["MessageAttributes"],
    )
    deployed.add_dead_letter("Audit", s3_event("in/ok.json"))

    summary = audit_redrive(deployed).run()

    assert (summary.count(REDRIVEN), summary.count(SKIPPED)) == (1, 3)
    reasons = sorted(str(o.reason) for o in summary.outcomes if o.result == SKIPPED)
    assert reasons[0].startswith("body is not JSON")
    assert "not of this consumer" in reasons[1]
    assert "not an EventBridge event" in reasons[2]
    assert deployed.depth("AuditDlqUrl") == 3


def test_dry_run_changes_nothing(deployed: Deployed) -> None:
    for n in range(3):
        deployed.add_dead_letter("Audit", s3_event(f"in/{n}.json"))

    summary = audit_redrive(deployed, dry_run=True).run()

    assert summary.count(WOULD_REDRIVE) == 3
    assert deployed.drain("AuditQueueUrl") == []
    assert deployed.depth("AuditDlqUrl") == 3


def test_limit_stops_after_n_messages_across_both_queues(deployed: Deployed) -> None:
    for n in range(3):
        deployed.add_dead_letter("Ingest", s3_event(f"in/{n}.json"))
        deployed.add_failure_record("Ingest", s3_event(f"in/f{n}.json"))
    consumer = deployed.ctx.deployed_consumer("ingest")

    summary = Redrive(deployed.sqs, consumer, deliverer_for(deployed.ctx, consumer), wait_seconds=0).run(
        limit=4
    )

    assert summary.count(REDRIVEN) == 4
    assert deployed.depth("IngestDlqUrl") + deployed.depth("IngestFailureQueueUrl") == 2
