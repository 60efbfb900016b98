"""`eventpipe consumers` and `eventpipe consumers new`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from eventpipe.contract.consumers import TARGET_KINDS
from eventpipe.ops import inventory, scaffold
from eventpipe.ops.cli_support import (
    AsJson,
    Shared,
    depth_text,
    describe,
    one_line_errors,
    operator_command,
    out,
    print_json,
)

# A choice, not a free string: the registry's target kinds (help shows them; a typo is a usage error).
TargetKind = Enum("TargetKind", {kind.upper(): kind for kind in TARGET_KINDS}, type=str)  # type: ignore[misc]

DEFAULT_TARGET = TargetKind("lambda")

consumers_app = typer.Typer(
    no_args_is_help=False,
    invoke_without_command=True,
)


@consumers_app.callback()
@operator_command
def consumers_list(
    shared: Shared,
    ctx: typer.Context,
) -> None:
    """List the consumers (pattern, target, DLQ and failure-queue depth, rule state), or scaffold one.

    Examples:

      eventpipe consumers --local

      eventpipe consumers --stage prod --region eu-west-1 --json
    """
    if ctx.invoked_subcommand is not None:
        return
    rows = inventory.consumer_rows(shared.context())
    if shared.as_json:
        print_json([row.as_json() for row in rows])
        return
    table = Table(title=f"consumers of {shared.stack if not shared.local else 'local mode'}")
    # The short columns never wrap; the pattern (in a few words, see `describe`) and the physical target
    # name share the room left, 2:1, so an 80-column terminal still shows every column.
    shares = {"pattern": 2, "target": 1}
    for column in ("name", "pattern", "target", "dlq", "failures", "rule"):
        table.add_column(
            column, no_wrap=column not in shares, overflow="fold", ratio=shares.get(column), min_width=4
        )
    for row in rows:
        state = row.rule_state if row.rule_state == "ENABLED" else f"[yellow]{row.rule_state}[/yellow]"
        table.add_row(
            row.name,
            describe(row.pattern),
            row.target,
            depth_text(row.dlq),
            depth_text(row.failures),
            state,
        )
    out.print(table)


@consumers_app.command("new")
@one_line_errors
def consumers_new(
    name: Annotated[str, typer.Argument(help="New consumer name: lowercase letters, digits and '-'.")],
    target: Annotated[TargetKind, typer.Option("--target", "-t", help="Target kind.")] = DEFAULT_TARGET,
    pattern: Annotated[
        Path | None,
        typer.Option("--pattern", help="JSON file with the EventBridge pattern (default: object_created())."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Scaffold a consumer: its registry entry, and for Lambda a function folder and a unit test.

    Examples:

      eventpipe consumers new search-index --target lambda

      eventpipe consumers new archive-copy --target sqs \\
        --pattern patterns/archive.json
    """
    loaded = scaffold.read_pattern_file(pattern) if pattern else None
    result = scaffold.scaffold(name, target.value, pattern=loaded)
    if as_json:
        print_json(result.as_json())
        return
    out.print(f"consumer [bold]{name}[/bold] ({target.value}) scaffolded:")
    for path in result.files:
        out.print(f"  {path}")
    out.print(
        "next: fill in the TODOs; `make test` (the infra tests walk the new consumer; the template "
        "snapshot covers only the shipped consumers); then `make deploy` (or restart local mode).",
        markup=False,
    )
