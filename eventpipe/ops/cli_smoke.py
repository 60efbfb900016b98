"""`eventpipe smoke`: the after-deploy check (see `eventpipe.ops.smoke` for what each hop checks)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from eventpipe.ops.cli_support import (
    Shared,
    err,
    operator_command,
    out,
    print_json,
)
from eventpipe.ops.smoke import FAILED, NOT_OBSERVABLE, OK, SMOKE_PREFIX, SmokeReport, render_rows, run_smoke
from eventpipe.ops.timeparse import parse_duration

DEFAULT_TIMEOUT = "2m"

Timeout = Annotated[
    str,
    typer.Option(
        "--timeout",
        help="How long to wait for each hop (e.g. 90s, 2m, 1m30s).",
        show_default=True,
    ),
]

_COLOURS = {OK: "green", FAILED: "red", NOT_OBSERVABLE: "yellow"}


@operator_command
def smoke(
    shared: Shared,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> None:
    """Prove a deployed pipeline works: upload a canary, see it arrive everywhere, remove it.

    The canary is `_smoke/<run>.json` in the ingest bucket. Checks its record in the table, its event
    in every consumer whose rule matches it (queues read, Lambda evidence in the table; what cannot be
    observed is listed as such), that every DLQ and failure queue is empty; then deletes the canary
    and waits for delete-sync to remove its records. Exit 1 with a one-line reason naming the hop
    that failed (upload, bus/forwarder, ingest, table, audit, queues, delete-sync, cleanup...).

    Examples:

      eventpipe smoke --stack eventpipe-dev

      eventpipe smoke --local --json

      eventpipe smoke --stack eventpipe-prod --timeout 5m
    """
    seconds = parse_duration(timeout)
    ctx = shared.context()
    report = run_smoke(
        ctx, timeout_seconds=seconds, on_progress=None if shared.as_json else lambda text: err.print(text)
    )
    if shared.as_json:
        print_json(report.as_json())
    else:
        render(report)
    if report.failure is not None:
        raise report.failure
    if not shared.as_json:
        out.print(
            f"[green]smoke passed[/green]: {report.stack} ({'local mode' if report.local else ctx.region})"
        )


def render(report: SmokeReport, console: Console = out) -> None:
    table = Table(
        title=f"smoke test of {report.stack}: s3://{report.bucket}/{report.key}", title_justify="left"
    )
    for column in ("hop", "check", "result", "seconds", "detail"):
        table.add_column(column, overflow="fold", justify="right" if column == "seconds" else "left")
    for hop, what, status, seconds, detail in render_rows(report.checks):
        colour = _COLOURS.get(status)
        table.add_row(hop, what, f"[{colour}]{status}[/{colour}]" if colour else status, seconds, detail)
    console.print(table)


__all__ = ["SMOKE_PREFIX", "smoke"]
