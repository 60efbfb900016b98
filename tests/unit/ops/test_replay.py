"""Replay planning (validation, FilterArns) and following a replay to its end, against moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ops_fakes import Deployed

from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.ops import replay

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def plan(deployed: Deployed, since: timedelta, until: timedelta, *consumers: str, retention: int = 30) -> Any:
    return replay.plan_replay(
        deployed.ctx,
        since=NOW - since,
        until=NOW - until,
        consumer_names=consumers,
        retention_days=retention,
        now=NOW,
    )


def test_replay_targets_only_the_chosen_consumers_rules(deployed: Deployed) -> None:
    chosen = plan(deployed, timedelta(hours=2), timedelta(hours=1), "ingest")

    request = chosen.request()

    assert request["Destination"] == {
        "Arn": deployed.outputs["EventBusArn"],
        "FilterArns": [deployed.outputs["IngestRuleArn"]],
    }
    assert request["EventSourceArn"] == deployed.outputs["ArchiveArn"]
    assert (request["EventStartTime"], request["EventEndTime"]) == (
        NOW - timedelta(hours=2),
        NOW - timedelta(hours=1),
    )
    assert chosen.warnings == ()


def test_no_consumer_means_every_deployed_consumer(deployed: Deployed) -> None:
    chosen = plan(deployed, timedelta(hours=2), timedelta(hours=1))

    assert chosen.consumers == ("audit", "delete-sync", "ingest")
    assert set(chosen.filter_arns) == {
        deployed.outputs[f"{p}RuleArn"] for p in ("Ingest", "DeleteSync", "Audit")
    }


def test_a_repeated_consumer_is_replayed_to_once(deployed: Deployed) -> None:
    assert plan(deployed, timedelta(hours=2), timedelta(hours=1), "audit", "audit").filter_arns == (
        deployed.outputs["AuditRuleArn"],
    )


@pytest.mark.parametrize(
    ("since", "until", "consumers", "message"),
    [
        (timedelta(hours=1), timedelta(hours=2), (), "must be before --until"),
        (timedelta(hours=1), timedelta(hours=1), (), "must be before --until"),
        (timedelta(hours=1), timedelta(minutes=-5), (), "is in the future"),
        (timedelta(days=31), timedelta(days=1), (), "older than the archive's retention of 30 days"),
        (
            timedelta(hours=2),
            timedelta(hours=1),
            ("ingest", "nope"),
            "unknown consumer 'nope' (known: audit",
        ),
    ],
)
def test_invalid_requests_are_one_line_usage_errors(
    deployed: Deployed, since: timedelta, until: timedelta, consumers: tuple[str, ...], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        plan(deployed, since, until, *consumers)

    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_indefinite_retention_accepts_any_past_window(deployed: Deployed) -> None:
    assert plan(deployed, timedelta(days=900), timedelta(days=1), retention=0).consumers


def test_a_window_ending_within_the_archive_lag_warns(deployed: Deployed) -> None:
    assert plan(deployed, timedelta(hours=1), timedelta(minutes=1)).warnings


def test_generated_names_are_valid_replay_names() -> None:
    long_names = ["a-very-long-consumer-name-that-goes-on", "another-very-long-consumer-name-here"]
    for consumers in (["ingest"], ["delete-sync", "audit"], ["a", "b", "c"], long_names):
        name = replay.replay_name(consumers, NOW)
        assert len(name) <= 64
        assert name.endswith("-20261126T120000")
        assert all(ch.isalnum() or ch in "-_." for ch in name)


def test_start_then_wait_reports_the_final_state(deployed: Deployed) -> None:
    now = datetime.now(UTC)
    chosen = replay.plan_replay(
        deployed.ctx,
        since=now - timedelta(hours=1),
        until=now - timedelta(minutes=10),
        consumer_names=["ingest"],
        retention_days=30,
    )
    replay.start(deployed.ctx, chosen)
    polled: list[str] = []

    final = replay.wait(
        deployed.ctx,
        chosen.name,
        timeout=30,
        on_poll=lambda r: polled.append(r["State"]),
        sleep=lambda _: None,
    )

    assert final["State"] == "COMPLETED"
    assert polled[-1] == "COMPLETED"
    assert [item["ReplayName"] for item in replay.list_replays(deployed.ctx)] == [chosen.name]


def test_wait_gives_up_at_the_deadline_with_a_hint(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "describe", lambda ctx, name: {"ReplayName": name, "State": "RUNNING"})
    ticks = iter(range(100))

    with pytest.raises(
        EventpipeError, match="still RUNNING after 3s; follow it with `eventpipe replay status r1`"
    ):
        replay.wait(deployed.ctx, "r1", timeout=3, sleep=lambda _: None, clock=lambda: float(next(ticks)))


def test_progress_is_the_replayed_fraction_of_the_window() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    state = {
        "State": "RUNNING",
        "EventStartTime": start,
        "EventEndTime": start + timedelta(hours=4),
        "EventLastReplayedTime": start + timedelta(hours=1),
    }

    assert replay.progress_fraction(state) == 0.25
    assert replay.progress_fraction({**state, "State": "COMPLETED"}) == 1.0
    assert replay.progress_fraction({"State": "STARTING"}) == 0.0
