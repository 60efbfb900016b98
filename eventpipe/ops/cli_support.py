"""What every operator command shares: the targeting options, one-line errors, output helpers."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from eventpipe.contract.errors import EventpipeError
from eventpipe.ops.context import OpsContext, aws_errors, resolve_context

P = ParamSpec("P")
R = TypeVar("R")

# Tables and results on stdout; progress, warnings and errors on stderr (stdout stays clean for --json).
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

Stack = Annotated[
    str,
    typer.Option("--stack", envvar="EVENTPIPE_STACK", help="CloudFormation stack name (eventpipe-<stage>)."),
]
Region = Annotated[str | None, typer.Option("--region", help="AWS region (default: profile / AWS_REGION).")]
Profile = Annotated[str | None, typer.Option("--profile", help="AWS named profile.")]
Local = Annotated[
    bool,
    typer.Option("--local", help="Act on the running local mode (also when EVENTPIPE_LOCAL=1)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
ConsumerName = Annotated[
    str, typer.Option("--consumer", "-c", help="Consumer name (see `eventpipe consumers`).")
]


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """User-facing failures end as `error: <reason>` and exit codes, never as tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with aws_errors(command.__name__.replace("_", " ")):
                return command(*args, **kwargs)
        except EventpipeError as exc:
            # Plain echo, not rich: a reason must stay on one line whatever the terminal width.
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def context(stack: str, region: str | None, profile: str | None, local: bool) -> OpsContext:
    return resolve_context(stack=stack, region=region, profile=profile, local=local)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def compact(pattern: Any) -> str:
    """The consumer's own part of a rule pattern: `source` and the bucket filter are the same on every
    rule (the stack adds them), so the table leaves them out; `--json` shows the whole pattern."""
    if pattern is None:
        return "-"
    own = {key: value for key, value in pattern.items() if key != "source"}
    detail = {key: value for key, value in own.get("detail", {}).items() if key != "bucket"}
    if detail:
        own["detail"] = detail
    else:
        own.pop("detail", None)
    return json.dumps(own, separators=(",", ":")) if own else "(every object event)"


def depth_text(depth: Any) -> str:
    if depth is None:
        return "-"
    text = str(depth.total)
    return f"[red]{text}[/red]" if depth.total else text
