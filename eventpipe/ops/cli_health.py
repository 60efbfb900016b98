"""`eventpipe status` and `eventpipe empty-buckets`."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.progress import Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.ops import inventory
from eventpipe.ops.buckets import empty_stack_buckets, stack_buckets, stack_protection
from eventpipe.ops.cli_support import (
    Shared,
    err,
    operator_command,
    out,
    print_json,
)
from eventpipe.ops.context import StackNotFoundError


@operator_command
def status(
    shared: Shared,
) -> None:
    """One screen of health: dead-letter depths, alarms in ALARM, last replay, archive size.

    Exit 0 even when unhealthy (use --json and read `dead_letters` / `alarms` in scripts).

    Examples:

      eventpipe status --local

      eventpipe status --stack eventpipe-prod --json
    """
    data = inventory.health(shared.context())
    if shared.as_json:
        print_json(data)
        return
    archive = data["archive"]
    out.print(f"[bold]{data['stack']}[/bold] ({'local mode' if data['local'] else data['region']})")
    out.print(
        f"archive {archive['name']}: {archive['state']}, {archive['eventCount']} events, "
        f"{archive['sizeBytes']} bytes, retention {archive['retentionDays']} days"
    )
    last = data["lastReplay"]
    out.print(
        "last replay: "
        + (f"{last['replayName']} {last['state']} ({last['progress']:.0%})" if last else "none"),
        markup=False,
    )
    out.print(f"audit queue depth: {data['auditQueueDepth']}")
    queues = Table(title=f"dead letters: {data['deadLetters']}")
    for column in ("consumer", "queue", "depth", "in flight"):
        queues.add_column(column)
    for row in data["queues"]:
        depth = f"[red]{row['depth']}[/red]" if row["depth"] else "0"
        queues.add_row(row["consumer"], row["queue"], depth, str(row["inFlight"]))
    out.print(queues)
    if data["alarms"]:
        alarms = Table(title=f"[red]{len(data['alarms'])} alarms in ALARM[/red]")
        for column in ("alarm", "since", "reason"):
            alarms.add_column(column, overflow="fold")
        for alarm in data["alarms"]:
            alarms.add_row(alarm["name"], str(alarm["since"]), alarm["reason"])
        out.print(alarms)
    elif data["alarmsDefined"]:
        out.print(f"[green]no alarms in ALARM[/green] (of {data['alarmsDefined']})")
    else:
        out.print("[yellow]this stack has no CloudWatch alarms[/yellow] (local mode: watch the depths above)")


Force = Annotated[
    bool,
    typer.Option("--force", help="Empty a stack even if it has termination protection or retains resources."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]


def _interactive() -> bool:
    """Whether a person can be asked: both ends of the conversation are a terminal."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def _confirm(stack: str, buckets: list[str]) -> None:
    """A person types the stack name; without a terminal nothing is deleted unless --yes was given."""
    if not _interactive():
        raise UsageError(
            f"refusing to empty the buckets of {stack} without confirmation: no terminal to ask on "
            "(pass --yes in scripts)"
        )
    err.print(
        f"This permanently deletes every object version in {len(buckets)} bucket(s) of {stack}: "
        f"{', '.join(buckets)}.",
        markup=False,
    )
    answer = typer.prompt(
        f"Type the stack name ({stack}) to confirm", default="", show_default=False, err=True
    )
    if answer.strip() != stack:
        raise EventpipeError(f"not confirmed (expected {stack!r}): nothing was deleted")


@operator_command
def empty_buckets(
    shared: Shared,
    force: Force = False,
    yes: Yes = False,
) -> None:
    """Delete every object version and delete marker in the stack's buckets (before destroy).

    Guarded: refuses a stack with termination protection or resources CloudFormation retains
    (DeletionPolicy / UpdateReplacePolicy Retain, RetainExceptOnCreate, Snapshot) unless --force;
    asks for the stack name on a terminal, and refuses without a terminal unless --yes.
    A stack that does not exist is not an error (nothing to empty).

    Examples:

      eventpipe empty-buckets --stack eventpipe-dev

      eventpipe empty-buckets --stack eventpipe-dev --yes --json

      eventpipe empty-buckets --local --yes
    """
    try:
        ctx = shared.context()
    except StackNotFoundError as exc:
        if shared.as_json:
            print_json([])
        else:
            out.print(f"{exc}: nothing to empty", markup=False)
        return
    if not force:
        reason = stack_protection(ctx).reason
        if reason:
            raise EventpipeError(
                f"refusing to empty the buckets of {ctx.stack}: {reason} (its data is meant to outlive "
                "it; pass --force only if it must really go)"
            )
    buckets = stack_buckets(ctx)
    if not yes:
        _confirm(ctx.stack, buckets)
    with Progress(
        TextColumn("{task.description}"), TimeElapsedColumn(), console=err, disable=shared.as_json
    ) as progress:
        tasks: dict[str, Any] = {}
        deleted: dict[str, int] = {}

        def tick(bucket: str, count: int) -> None:
            if bucket not in tasks:
                tasks[bucket] = progress.add_task(bucket)
            deleted[bucket] = deleted.get(bucket, 0) + count
            progress.update(tasks[bucket], description=f"{bucket}: {deleted[bucket]} versions deleted")

        results = empty_stack_buckets(ctx, on_deleted=tick, buckets=buckets)
    if shared.as_json:
        print_json([result.as_json() for result in results])
        return
    for result in results:
        note = "already gone" if result.missing else f"{result.deleted} versions and delete markers deleted"
        out.print(f"{result.bucket}: {note}", markup=False)
