"""`eventpipe dlq list|peek|redrive`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from eventpipe.contract.errors import UsageError
from eventpipe.ops import inventory
from eventpipe.ops.cli_support import (
    ConsumerName,
    Shared,
    err,
    operator_command,
    out,
    print_json,
)
from eventpipe.ops.context import FORWARDER
from eventpipe.ops.deadletters import peek
from eventpipe.ops.redrive import FAILED, REDRIVEN, SKIPPED, WOULD_REDRIVE, Outcome, Redrive, deliverer_for
from eventpipe.ops.timeparse import format_age, format_time

dlq_app = typer.Typer(help="Inspect and redrive dead letters, per consumer.", no_args_is_help=True)


@dlq_app.command("list")
@operator_command
def dlq_list(
    shared: Shared,
) -> None:
    """Every consumer's rule DLQ and failure queue (and the forwarder's and range worker's DLQs): depth,
    oldest message age.

    Oldest age: CloudWatch ApproximateAgeOfOldestMessage on AWS; else the oldest peeked SentTimestamp.

    Examples:

      eventpipe dlq list --local

      eventpipe dlq list --stack eventpipe-prod --json
    """
    rows = inventory.dead_letter_queues(shared.context())
    if shared.as_json:
        print_json([row.as_json() for row in rows])
        return
    table = Table(title="dead-letter queues")
    for column in ("consumer", "queue", "depth", "in flight", "oldest"):
        table.add_column(column)
    for row in rows:
        depth = f"[red]{row.depth.visible}[/red]" if row.depth.visible else "0"
        table.add_row(
            row.consumer, row.role, depth, str(row.depth.in_flight), format_age(row.oldest_age_seconds)
        )
    out.print(table)


@dlq_app.command("peek")
@operator_command
def dlq_peek(
    shared: Shared,
    consumer: ConsumerName,
    # Not -n/--limit: those mean a total (dlq redrive); this is a count per queue.
    per_queue: Annotated[
        int, typer.Option("--per-queue", metavar="N", min=1, help="Messages to show per queue.")
    ] = 10,
) -> None:
    """Show dead letters without removing them: error, rule, event id, object key.

    Examples:

      eventpipe dlq peek --consumer ingest --local

      eventpipe dlq peek -c audit --per-queue 50 --json
    """
    ctx = shared.context()
    owner = ctx.component(consumer)
    letters = [
        letter
        for role, url in owner.queues.items()
        for letter in peek(ctx.client("sqs"), url, role, limit=per_queue)
    ]
    if shared.as_json:
        print_json([letter.as_json() for letter in letters])
        return
    table = Table(title=f"dead letters of {consumer}")
    for column in ("queue", "sent", "error", "rule / function", "event id", "object key"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        error = letter.problem or f"{letter.error_code or '?'}: {letter.error_message or ''}"
        source = (
            (letter.rule_arn or letter.function_arn or "-").rsplit("/", 1)[-1].rsplit(":function:", 1)[-1]
        )
        table.add_row(
            letter.queue_role,
            format_time(letter.sent_at),
            error,
            source,
            letter.event_id or "-",
            letter.object_key or "-",
        )
    out.print(table)


@dlq_app.command("redrive")
@operator_command
def dlq_redrive(
    shared: Shared,
    consumer: ConsumerName,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", metavar="N", min=1, help="Stop after N messages in total.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be redriven; change nothing.")
    ] = False,
) -> None:
    """Re-deliver dead letters to the failed consumer only (never to the whole bus).

    Sources: the rule DLQ (the event) and the Lambda failure queue (the record's requestPayload).
    `--consumer range-worker` sends dead range tasks back to the range work queue.

    A message is deleted only after its re-delivery was accepted: an interruption loses nothing.

    Exit 1 when any delivery failed; unparseable messages are skipped and left in place.

    Examples:

      eventpipe dlq redrive --consumer ingest --dry-run --local

      eventpipe dlq redrive --consumer ingest --limit 100 --json
    """
    if consumer == FORWARDER:
        raise UsageError(
            "the forwarder's dead letters are S3 events that never reached the project bus, and PutEvents "
            "refuses aws.* sources: re-copy the objects instead (docs/operations.md, 'Forwarder DLQ')"
        )
    ctx = shared.context()
    target = ctx.component(consumer)
    deliverer = deliverer_for(ctx, target)
    counts = {REDRIVEN: 0, WOULD_REDRIVE: 0, FAILED: 0, SKIPPED: 0}
    redrive = Redrive(ctx.client("sqs"), target, deliverer, dry_run=dry_run)
    total = redrive.expected(limit=limit)  # the queues' depth: approximate, so it may grow below
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        disable=shared.as_json,
    ) as progress:
        task = progress.add_task(f"redriving {consumer}", total=total)

        def tick(outcome: Outcome) -> None:
            nonlocal total
            counts[outcome.result] += 1
            total = max(total, sum(counts.values()))
            progress.update(
                task,
                advance=1,
                total=total,
                description=f"redriving {consumer}: " + _counts_text(counts, dry_run),
            )

        redrive.on_outcome = tick
        summary = redrive.run(limit=limit)
    if shared.as_json:
        print_json(summary.as_json())
    else:
        for outcome in summary.outcomes:
            if outcome.result in (FAILED, SKIPPED):
                out.print(
                    f"{outcome.result}: {outcome.message_id} ({outcome.queue_role}): {outcome.reason}",
                    markup=False,
                )
        out.print(f"{consumer} -> {summary.target}: {_counts_text(counts, dry_run)}", markup=False)
    if not summary.ok:
        raise typer.Exit(1)


def _counts_text(counts: dict[str, int], dry_run: bool) -> str:
    first = f"{counts[WOULD_REDRIVE]} would be redriven" if dry_run else f"{counts[REDRIVEN]} redriven"
    return f"{first}, {counts[FAILED]} failed, {counts[SKIPPED]} skipped"
