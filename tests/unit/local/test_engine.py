"""The local EventBridge delivery engine, with an in-memory topology and recording senders (the
boundaries), so EventBridge's rules semantics are checked without the emulator."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from eventpipe.local.engine import ArchiveView, DeliveryError, EventEngine, ReplayRun, RuleView, Timing

BUS = "project"


class Topology:
    def __init__(self) -> None:
        self.rules_by_bus: dict[str, list[RuleView]] = {BUS: [], "default": []}
        self.archive_list: list[ArchiveView] = []

    def rules(self, bus: str) -> list[RuleView]:
        return list(self.rules_by_bus.get(bus, []))

    def archives(self, bus: str) -> list[ArchiveView]:
        return [a for a in self.archive_list if a.bus == bus]

    def bus_exists(self, bus: str) -> bool:
        return bus in self.rules_by_bus

    def on_archived(self, archive: str, event: dict[str, Any]) -> None:
        pass


class Senders:
    """Records deliveries; queues named in `failing` refuse every message."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str] | None]] = []
        self.failing: set[str] = set()
        self.lock = threading.Lock()

    def sqs_send(
        self,
        queue_arn: str,
        body: str,
        *,
        attributes: dict[str, str] | None = None,
        group_id: str | None = None,
    ) -> None:
        if queue_arn in self.failing:
            raise DeliveryError(
                "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist."
            )
        with self.lock:
            self.sent.append((queue_arn, body, attributes))

    def sns_publish(self, topic_arn: str, body: str) -> None:
        self.sqs_send(topic_arn, body)

    def sfn_start(self, state_machine_arn: str, body: str) -> None:
        self.sqs_send(state_machine_arn, body)

    def lambda_invoke_async(self, function_arn: str, payload: Any) -> None:
        self.sqs_send(function_arn, json.dumps(payload))

    def to(self, arn: str) -> list[tuple[str, dict[str, str] | None]]:
        with self.lock:
            return [(body, attributes) for target, body, attributes in self.sent if target == arn]


def q(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:1:{name}"


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """A minimal exact-value matcher: these tests are about delivery, not pattern semantics."""
    return all(event.get(field) in allowed for field, allowed in pattern.items())


@pytest.fixture
def world() -> Iterator[tuple[EventEngine, Topology, Senders]]:
    topology, senders = Topology(), Senders()
    engine = EventEngine(
        topology=topology,
        senders=senders,
        matcher=matches,
        timing=Timing(scale=0.0001, replay_start_delay=0.0, replay_event_gap=0.0),
    )
    yield engine, topology, senders
    engine.shutdown()


def settle(engine: EventEngine) -> None:
    deadline = time.monotonic() + 10
    while engine.busy(horizon=1.0):
        assert time.monotonic() < deadline, "the engine did not settle"
        time.sleep(0.005)


def rule(name: str, targets: list[dict[str, Any]], *, bus: str = BUS, enabled: bool = True) -> RuleView:
    return RuleView(
        name=name,
        arn=f"arn:aws:events:us-east-1:1:rule/{bus}/{name}",
        bus=bus,
        pattern={"source": ["s"]},
        enabled=enabled,
        targets=tuple(targets),
    )


def event(n: int = 0) -> dict[str, Any]:
    return {"id": f"e-{n}", "source": "s", "detail": {"n": n}, "time": "2026-01-01T00:00:00Z"}


def test_only_enabled_matching_rules_deliver(world: tuple[EventEngine, Topology, Senders]) -> None:
    engine, topology, senders = world
    topology.rules_by_bus[BUS] = [
        rule("on", [{"Id": "t", "Arn": q("q-on")}]),
        rule("off", [{"Id": "t", "Arn": q("q-off")}], enabled=False),
    ]

    engine.publish(BUS, event())
    engine.publish(BUS, {**event(1), "source": "other"})
    settle(engine)

    assert [json.loads(body)["id"] for body, _ in senders.to(q("q-on"))] == ["e-0"]
    assert senders.to(q("q-off")) == []


def test_failed_delivery_is_retried_then_dead_lettered_with_the_attributes(
    world: tuple[EventEngine, Topology, Senders],
) -> None:
    engine, topology, senders = world
    senders.failing.add(q("q-gone"))
    target = {
        "Id": "t",
        "Arn": q("q-gone"),
        "RetryPolicy": {"MaximumRetryAttempts": 3},
        "DeadLetterConfig": {"Arn": q("q-dlq")},
    }
    topology.rules_by_bus[BUS] = [rule("r", [target])]

    engine.publish(BUS, event())
    settle(engine)

    ((body, attributes),) = senders.to(q("q-dlq"))
    assert json.loads(body) == event()
    assert attributes == {
        "ERROR_CODE": "AWS.SimpleQueueService.NonExistentQueue",
        "ERROR_MESSAGE": "The specified queue does not exist.",
        "RULE_ARN": "arn:aws:events:us-east-1:1:rule/project/r",
        "TARGET_ARN": q("q-gone"),
        "RETRY_ATTEMPTS": "3",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
    }
    assert engine.stats["failed_invocations"] == 4
    assert engine.stats["sent_to_dlq"] == 1


def test_without_a_dlq_an_undeliverable_event_is_dropped(
    world: tuple[EventEngine, Topology, Senders],
) -> None:
    engine, topology, senders = world
    senders.failing.add(q("q-gone"))
    topology.rules_by_bus[BUS] = [
        rule("r", [{"Id": "t", "Arn": q("q-gone"), "RetryPolicy": {"MaximumRetryAttempts": 0}}])
    ]

    engine.publish(BUS, event())
    settle(engine)

    assert engine.stats["dropped"] == 1
    assert senders.sent == []


def test_bus_target_forwards_the_event_unchanged(world: tuple[EventEngine, Topology, Senders]) -> None:
    engine, topology, senders = world
    topology.rules_by_bus["default"] = [
        rule("fwd", [{"Id": "t", "Arn": "arn:aws:events:us-east-1:1:event-bus/project"}], bus="default")
    ]
    topology.rules_by_bus[BUS] = [rule("r", [{"Id": "t", "Arn": q("q")}])]
    original = {**event(), "resources": ["arn:aws:s3:::b"], "time": "2020-02-02T02:02:02Z"}

    engine.publish("default", original)
    settle(engine)

    assert [json.loads(body) for body, _ in senders.to(q("q"))] == [original]


def test_archive_records_non_replayed_events_and_replay_honours_window_and_filter(
    world: tuple[EventEngine, Topology, Senders],
) -> None:
    engine, topology, senders = world
    topology.archive_list = [ArchiveView(name="arch", arn="arn:arch", bus=BUS, pattern=None, enabled=True)]
    chosen, other = (
        rule("chosen", [{"Id": "t", "Arn": q("q-chosen")}]),
        rule("other", [{"Id": "t", "Arn": q("q-other")}]),
    )
    topology.rules_by_bus[BUS] = [chosen, other]
    engine.publish(BUS, event(0))
    boundary = time.time()
    wait_until(lambda: time.time() > boundary)
    engine.publish(BUS, event(1))
    settle(engine)

    run = ReplayRun(
        name="rp",
        archive="arch",
        bus=BUS,
        start=boundary,
        end=time.time() + 1,
        filter_arns=frozenset({chosen.arn}),
    )
    engine.start_replay(run)
    wait_until(lambda: run.state == "COMPLETED")
    settle(engine)

    replayed = [
        json.loads(body) for body, _ in senders.to(q("q-chosen")) if "replay-name" in json.loads(body)
    ]
    assert [(e["id"], e["replay-name"]) for e in replayed] == [("e-1", "rp")]
    assert all("replay-name" not in json.loads(body) for body, _ in senders.to(q("q-other")))
    assert len(engine.archived("arch")) == 2  # replayed events are not archived again
    assert run.last_replayed is not None


def test_cancelling_a_replay_ends_it_cancelled(world: tuple[EventEngine, Topology, Senders]) -> None:
    engine, _, _ = world
    run = ReplayRun(name="rp", archive="none", bus=BUS, start=0, end=1, filter_arns=None)

    assert run.request_cancel()
    engine.start_replay(run)
    wait_until(lambda: run.state == "CANCELLED")

    assert not run.request_cancel()


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)
