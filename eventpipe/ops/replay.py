"""Replays from the bus archive to chosen consumers only (their rule ARNs as FilterArns)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventpipe.contract import outputs
from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.ops.context import OpsContext

TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
# Archiving lags behind the bus: events of the last minutes may not be replayable yet.
ARCHIVE_LAG = timedelta(minutes=5)
_NAME_LIMIT = 64


@dataclass(frozen=True)
class ReplayPlan:
    """A validated StartReplay request."""

    name: str
    since: datetime
    until: datetime
    consumers: tuple[str, ...]
    filter_arns: tuple[str, ...]
    archive_arn: str
    bus_arn: str
    warnings: tuple[str, ...] = ()

    def request(self) -> dict[str, Any]:
        return {
            "ReplayName": self.name,
            "Description": f"eventpipe replay to {', '.join(self.consumers)}",
            "EventSourceArn": self.archive_arn,
            "EventStartTime": self.since,
            "EventEndTime": self.until,
            "Destination": {"Arn": self.bus_arn, "FilterArns": list(self.filter_arns)},
        }


def plan_replay(
    ctx: OpsContext,
    *,
    since: datetime,
    until: datetime,
    consumer_names: Sequence[str],
    retention_days: int,
    now: datetime | None = None,
    name: str | None = None,
) -> ReplayPlan:
    """Validate the window and the consumers; each problem is one line naming what to change."""
    current = now or datetime.now(UTC)
    check_window(since, until, now=current)
    if retention_days > 0 and since < current - timedelta(days=retention_days):
        raise UsageError(
            f"--since ({_iso(since)}) is older than the archive's retention of {retention_days} days"
        )
    if consumer_names:
        chosen = [ctx.deployed_consumer(name) for name in dict.fromkeys(consumer_names)]
    else:
        chosen = [consumer for consumer in ctx.consumers() if consumer.deployed]
        if not chosen:
            raise EventpipeError(f"stack {ctx.stack} has no deployed consumers to replay to")
    warnings = []
    if until > current - ARCHIVE_LAG:
        warnings.append("events of the last few minutes may not be archived yet and would not be replayed")
    names = tuple(consumer.name for consumer in chosen)
    return ReplayPlan(
        name=name or replay_name(names, current),
        since=since,
        until=until,
        consumers=names,
        filter_arns=tuple(str(consumer.rule_arn) for consumer in chosen),
        archive_arn=ctx.output(outputs.ARCHIVE_ARN),
        bus_arn=ctx.output(outputs.EVENT_BUS_ARN),
        warnings=tuple(warnings),
    )


def check_window(since: datetime, until: datetime, *, now: datetime) -> None:
    """The checks that need no AWS call, so they come before any (and without credentials)."""
    if since >= until:
        raise UsageError(f"--since ({_iso(since)}) must be before --until ({_iso(until)})")
    if until > now:
        raise UsageError(f"--until ({_iso(until)}) is in the future; the archive only holds the past")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def replay_name(consumers: Sequence[str], now: datetime) -> str:
    """`eventpipe-ingest-20261126T101500`: readable in `replay list`, unique per second, valid charset."""
    stamp = now.strftime("%Y%m%dT%H%M%S")
    label = re.sub(r"[^A-Za-z0-9_.-]", "-", "+".join(consumers) if len(consumers) <= 2 else "several")
    return f"eventpipe-{label}"[: _NAME_LIMIT - len(stamp) - 1] + f"-{stamp}"


def archive_name(ctx: OpsContext) -> str:
    return ctx.outputs.get(outputs.ARCHIVE_NAME) or ctx.output(outputs.ARCHIVE_ARN).rsplit("/", 1)[-1]


def describe_archive(ctx: OpsContext) -> dict[str, Any]:
    response: dict[str, Any] = ctx.client("events").describe_archive(ArchiveName=archive_name(ctx))
    return response


def start(ctx: OpsContext, plan: ReplayPlan) -> dict[str, Any]:
    response: dict[str, Any] = ctx.client("events").start_replay(**plan.request())
    return response


def list_replays(ctx: OpsContext) -> list[dict[str, Any]]:
    """Replays of this stack's archive, newest first."""
    events = ctx.client("events")
    archive_arn = ctx.output(outputs.ARCHIVE_ARN)
    replays: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = events.list_replays(EventSourceArn=archive_arn, **({"NextToken": token} if token else {}))
        replays.extend(page.get("Replays", []))
        token = page.get("NextToken")
        if not token:
            break
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(replays, key=lambda replay: replay.get("ReplayStartTime") or epoch, reverse=True)


def describe(ctx: OpsContext, name: str) -> dict[str, Any]:
    response: dict[str, Any] = ctx.client("events").describe_replay(ReplayName=name)
    return response


def cancel(ctx: OpsContext, name: str) -> dict[str, Any]:
    response: dict[str, Any] = ctx.client("events").cancel_replay(ReplayName=name)
    return response


def progress_fraction(replay: dict[str, Any]) -> float:
    """How far the replay got through its window (EventLastReplayedTime between start and end)."""
    if replay.get("State") == "COMPLETED":
        return 1.0
    start, end, last = (replay.get(k) for k in ("EventStartTime", "EventEndTime", "EventLastReplayedTime"))
    if not (isinstance(start, datetime) and isinstance(end, datetime) and isinstance(last, datetime)):
        return 0.0
    span = (end - start).total_seconds()
    return 0.0 if span <= 0 else min(1.0, max(0.0, (last - start).total_seconds() / span))


def wait(
    ctx: OpsContext,
    name: str,
    *,
    timeout: float,
    poll_seconds: float = 2.0,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Follow DescribeReplay until a terminal state; raises when it is not reached in `timeout`."""
    deadline = clock() + timeout
    while True:
        replay = describe(ctx, name)
        if on_poll:
            on_poll(replay)
        if replay.get("State") in TERMINAL_STATES:
            return replay
        if clock() >= deadline:
            raise EventpipeError(
                f"replay {name} still {replay.get('State')} after {timeout:.0f}s; "
                f"follow it with `eventpipe replay status {name}`"
            )
        sleep(poll_seconds)
