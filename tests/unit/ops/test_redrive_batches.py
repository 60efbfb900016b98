"""Redrive at queue speed: 10 messages per ReceiveMessage, deliveries a few at a time, accepted ones
deleted with DeleteMessageBatch (per-entry failures handled), a real Ctrl-C loses nothing."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from ops_fakes import Deployed, s3_event

from eventpipe.ops.redrive import FAILED, REDRIVEN, Deliverer, Redrive, deliverer_for


@dataclass
class RecordingSqs:
    """The real (moto) SQS client, with its calls recorded; `spoil` makes DeleteMessageBatch carry an
    invalid receipt handle for the messages whose body contains one of these strings."""

    client: Any
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    spoil: tuple[str, ...] = ()
    _bodies: dict[str, str] = field(default_factory=dict)  # receipt handle -> body

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if name == "delete_message_batch":
                kwargs = {
                    **kwargs,
                    "Entries": [
                        {**entry, "ReceiptHandle": "spoiled"}
                        if any(s in self._bodies.get(entry["ReceiptHandle"], "") for s in self.spoil)
                        else entry
                        for entry in kwargs["Entries"]
                    ],
                }
            response = method(**kwargs)
            if name == "receive_message":
                for message in response.get("Messages", []):
                    self._bodies[message["ReceiptHandle"]] = message["Body"]
            return response

        return call

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for called, kwargs in self.calls if called == name]


def test_receives_ten_at_a_time_and_deletes_in_batches(deployed: Deployed) -> None:
    events = [s3_event(f"in/{n}.json") for n in range(25)]
    for event in events:
        deployed.add_dead_letter("Audit", event)
    consumer = deployed.ctx.deployed_consumer("audit")
    sqs = RecordingSqs(deployed.sqs)

    summary = Redrive(sqs, consumer, deliverer_for(deployed.ctx, consumer), wait_seconds=0).run()

    assert summary.count(REDRIVEN) == 25
    assert {kwargs["MaxNumberOfMessages"] for kwargs in sqs.named("receive_message")} == {10}
    assert [len(kwargs["Entries"]) for kwargs in sqs.named("delete_message_batch")] == [10, 10, 5]
    assert sqs.named("delete_message") == []
    assert deployed.depth("AuditDlqUrl") == 0
    assert sorted(b["id"] for b in deployed.drain("AuditQueueUrl")) == sorted(e["id"] for e in events)


def test_a_message_sqs_did_not_delete_is_failed_and_stays_in_the_queue(deployed: Deployed) -> None:
    for n in range(12):
        deployed.add_dead_letter("Audit", s3_event(f"in/{n}.json"))
    consumer = deployed.ctx.deployed_consumer("audit")
    sqs = RecordingSqs(deployed.sqs, spoil=("in/7.json",))

    summary = Redrive(sqs, consumer, deliverer_for(deployed.ctx, consumer), wait_seconds=0).run()

    assert (summary.count(REDRIVEN), summary.count(FAILED)) == (11, 1)
    assert not summary.ok
    [failed] = [o for o in summary.outcomes if o.result == FAILED]
    assert failed.object_key == "in/7.json"
    assert str(failed.reason).startswith("delivered, but not deleted (ReceiptHandleIsInvalid")
    visible = deployed.sqs.get_queue_attributes(
        QueueUrl=deployed.outputs["AuditDlqUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert (deployed.depth("AuditDlqUrl"), visible) == (1, "1")  # released at once, not held 5 minutes
    assert len(deployed.drain("AuditQueueUrl")) == 12  # it was delivered; a next redrive repeats it


@dataclass
class GatedTarget:
    """Counts deliveries in flight; each waits at a barrier of `parties`, which only trips when that
    many deliveries run at the same time (the timeout only keeps a broken redrive from hanging)."""

    inner: Deliverer
    parties: int
    in_flight: int = 0
    most: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _barrier: threading.Barrier = field(init=False)

    def __post_init__(self) -> None:
        self._barrier = threading.Barrier(self.parties, timeout=5)

    @property
    def target(self) -> str:
        return self.inner.target

    def deliver(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            self._barrier.wait()
            self.inner.deliver(event)
        finally:
            with self._lock:
                self.in_flight -= 1


def test_deliveries_run_concurrently_up_to_the_bound(deployed: Deployed) -> None:
    for n in range(8):
        deployed.add_dead_letter("Audit", s3_event(f"in/{n}.json"))
    consumer = deployed.ctx.deployed_consumer("audit")
    gated = GatedTarget(deliverer_for(deployed.ctx, consumer), parties=4)

    summary = Redrive(deployed.sqs, consumer, gated, wait_seconds=0, concurrency=4).run()

    assert summary.count(REDRIVEN) == 8
    assert gated.most == 4
    assert deployed.depth("AuditDlqUrl") == 0


@dataclass
class CtrlCTarget:
    """Delivers; the `at`-th delivery presses Ctrl-C (SIGINT to this process, handled on the main
    thread, which is waiting for the batch) and finishes only once the main thread got it."""

    inner: Deliverer
    at: int
    delivered: list[str] = field(default_factory=list)
    pressed: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def target(self) -> str:
        return self.inner.target

    def deliver(self, event: dict[str, Any]) -> None:
        with self._lock:
            press = len(self.delivered) + 1 == self.at
        if press:
            os.kill(os.getpid(), signal.SIGINT)
            assert self.pressed.wait(timeout=5)
        self.inner.deliver(event)
        with self._lock:
            self.delivered.append(event["id"])


def test_ctrl_c_during_a_batch_deletes_only_what_was_delivered(deployed: Deployed) -> None:
    events = [s3_event(f"in/{n}.json") for n in range(25)]
    for event in events:
        deployed.add_dead_letter("Audit", event)
    consumer = deployed.ctx.deployed_consumer("audit")
    target = CtrlCTarget(deliverer_for(deployed.ctx, consumer), at=13)

    def on_sigint(signum: int, frame: Any) -> None:
        target.pressed.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with pytest.raises(KeyboardInterrupt):
            Redrive(deployed.sqs, consumer, target, wait_seconds=0).run()
    finally:
        signal.signal(signal.SIGINT, previous)

    delivered = [body["id"] for body in deployed.drain("AuditQueueUrl")]
    assert sorted(delivered) == sorted(target.delivered)
    assert 13 <= len(delivered) < 25  # the batch's running deliveries ended; the pending ones did not start
    assert deployed.depth("AuditDlqUrl") == 25 - len(delivered)  # every delivered one deleted, no other
    audit = deliverer_for(deployed.ctx, consumer)
    second = Redrive(deployed.sqs, consumer, audit, wait_seconds=0).run()
    delivered += [body["id"] for body in deployed.drain("AuditQueueUrl")]
    assert second.count(REDRIVEN) == 25 - len(target.delivered)
    assert sorted(delivered) == sorted(e["id"] for e in events)  # each exactly once


def test_expected_is_the_visible_depth_of_the_consumers_queues_capped_by_the_limit(
    deployed: Deployed,
) -> None:
    for n in range(13):
        deployed.add_dead_letter("Ingest", s3_event(f"in/{n}.json"))
    for n in range(2):
        deployed.add_failure_record("Ingest", s3_event(f"in/f{n}.json"))
    deployed.add_dead_letter("Audit", s3_event("in/other.json"))
    consumer = deployed.ctx.deployed_consumer("ingest")
    redrive = Redrive(deployed.sqs, consumer, deliverer_for(deployed.ctx, consumer), wait_seconds=0)

    assert redrive.expected() == 15
    assert redrive.expected(limit=5) == 5
