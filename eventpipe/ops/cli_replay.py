"""`eventpipe replay start|list|status|cancel`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from eventpipe.contract.errors import EventpipeError
from eventpipe.ops import inventory, replay
from eventpipe.ops.cli_support import (
    Shared,
    complete_consumer,
    err,
    operator_command,
    out,
    print_json,
)
from eventpipe.ops.context import OpsContext
from eventpipe.ops.timeparse import format_time, parse_duration, parse_time

replay_app = typer.Typer(help="Replay archived events to chosen consumers only.", no_args_is_help=True)

DEFAULT_TIMEOUT = "1h"
# One time syntax: like --since and smoke's --timeout, a duration such as 90s, 30m, 1h (bare number: seconds).
Timeout = Annotated[
    str,
    typer.Option("--timeout", metavar="DURATION", help="How long --wait waits at most (e.g. 90s, 30m, 1h)."),
]


def complete_replay(incomplete: str) -> list[str]:
    """Replay names for shell completion: only from a running local mode (its ListReplays answers
    locally in milliseconds); on AWS a Tab press would need credentials and a network round trip, so
    nothing is offered there."""
    import os

    from eventpipe.ops.context import resolve_context

    if os.environ.get("EVENTPIPE_LOCAL") != "1":
        return []
    try:
        names = [item.get("ReplayName", "") for item in replay.list_replays(resolve_context(local=True))]
    except Exception:  # completion must never break the user's shell
        return []
    return [name for name in names if name.startswith(incomplete)]


ReplayName = Annotated[
    str,
    typer.Argument(
        metavar="NAME", help="Replay name (see `eventpipe replay list`).", autocompletion=complete_replay
    ),
]


@replay_app.command("start")
@operator_command
def replay_start(
    shared: Shared,
    since: Annotated[str, typer.Option("--since", help="Window start: ISO-8601 or relative (-2h, 30m).")],
    until: Annotated[
        str, typer.Option("--until", help="Window end (in the past): ISO-8601, relative or now.")
    ],
    consumer: Annotated[
        list[str] | None,
        typer.Option(
            "--consumer",
            "-c",
            metavar="NAME",
            help="Replay to this consumer only (repeatable; default: all).",
            autocompletion=complete_consumer,
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the replay until it ends.")] = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
    name: Annotated[str | None, typer.Option("--name", help="Replay name (default: generated).")] = None,
) -> None:
    """Start a replay of [--since, --until] from the archive to the chosen consumers' rules only.

    With --wait, exits 0 only when the replay COMPLETED.

    Examples:

      eventpipe replay start --since -2h --until -1h --consumer ingest --wait

      eventpipe replay start --since 2026-11-26T08:00:00Z \\
        --until 2026-11-26T09:00:00Z --json
    """
    wait_seconds = parse_duration(timeout)
    now = datetime.now(UTC)
    window = (parse_time(since, now=now), parse_time(until, now=now))
    replay.check_window(*window, now=now)
    ctx = shared.context()
    retention = int(replay.describe_archive(ctx).get("RetentionDays") or 0)
    plan = replay.plan_replay(
        ctx,
        since=window[0],
        until=window[1],
        consumer_names=consumer or [],
        retention_days=retention,
        name=name,
    )
    for warning in plan.warnings:
        typer.echo(f"warning: {warning}", err=True)
    replay.start(ctx, plan)
    summary = {
        "replayName": plan.name,
        "since": plan.since.isoformat(),
        "until": plan.until.isoformat(),
        "consumers": list(plan.consumers),
        "filterArns": list(plan.filter_arns),
    }
    if not wait:
        if shared.as_json:
            print_json(summary)
        else:
            out.print(
                f"replay [bold]{plan.name}[/bold] started to {', '.join(plan.consumers)}; "
                f"follow it with `eventpipe replay status {plan.name}`"
            )
        return
    final = follow(ctx, plan.name, timeout=wait_seconds, show=not shared.as_json)
    if shared.as_json:
        print_json({**summary, **inventory.replay_json(final)})
    finish_replay(final, quiet=shared.as_json)


def follow(ctx: OpsContext, name: str, *, timeout: float, show: bool) -> dict[str, Any]:
    """`replay.wait` with a progress bar on stderr (the window fraction already replayed)."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=False,
    ) as progress:
        task = progress.add_task(f"replay {name}", total=1.0)

        def update(state: dict[str, Any]) -> None:
            progress.update(
                task,
                completed=replay.progress_fraction(state),
                description=f"replay {name} [{state.get('State')}]",
            )

        return replay.wait(ctx, name, timeout=timeout, on_poll=update)


def finish_replay(final: dict[str, Any], *, quiet: bool) -> None:
    state = final.get("State")
    if state != "COMPLETED":
        reason = final.get("StateReason") or "no reason given"
        raise EventpipeError(f"replay {final.get('ReplayName')} ended {state}: {reason}")
    if not quiet:
        out.print(f"replay {final.get('ReplayName')} COMPLETED", markup=False)


@replay_app.command("list")
@operator_command
def replay_list(
    shared: Shared,
) -> None:
    """Replays of the stack's archive, newest first.

    Examples:

      eventpipe replay list --local

      eventpipe replay list --json
    """
    replays = replay.list_replays(shared.context())
    if shared.as_json:
        print_json([inventory.replay_json(item) for item in replays])
        return
    table = Table(title="replays")
    for column in ("name", "state", "window", "replayed up to", "started"):
        table.add_column(column, overflow="fold")
    for item in replays:
        window = f"{format_time(item.get('EventStartTime'))} .. {format_time(item.get('EventEndTime'))}"
        table.add_row(
            item.get("ReplayName", "?"),
            item.get("State", "?"),
            window,
            format_time(item.get("EventLastReplayedTime")),
            format_time(item.get("ReplayStartTime")),
        )
    out.print(table)


@replay_app.command("status")
@operator_command
def replay_status(
    shared: Shared,
    name: ReplayName,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the replay until it ends.")] = False,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> None:
    """State and progress of one replay (exit 0 unless it FAILED or was CANCELLED).

    Examples:

      eventpipe replay status eventpipe-ingest-20261126T101500

      eventpipe replay status eventpipe-ingest-20261126T101500 --wait --json
    """
    wait_seconds = parse_duration(timeout)
    ctx = shared.context()
    state = (
        follow(ctx, name, timeout=wait_seconds, show=not shared.as_json)
        if wait
        else replay.describe(ctx, name)
    )
    data = inventory.replay_json(state)
    if shared.as_json:
        print_json(data)
    else:
        for key, value in data.items():
            out.print(f"{key:>22}  {value}", markup=False)
    ended = state.get("State")
    if ended in ("FAILED", "CANCELLED") or (wait and ended != "COMPLETED"):
        raise EventpipeError(f"replay {name} ended {ended}: {state.get('StateReason') or 'no reason given'}")


@replay_app.command("cancel")
@operator_command
def replay_cancel(
    shared: Shared,
    name: ReplayName,
) -> None:
    """Cancel a running replay (events already replayed stay delivered).

    Example:

      eventpipe replay cancel eventpipe-ingest-20261126T101500
    """
    response = replay.cancel(shared.context(), name)
    if shared.as_json:
        print_json({"replayName": name, "state": response.get("State")})
    else:
        out.print(f"replay {name}: {response.get('State')}", markup=False)
