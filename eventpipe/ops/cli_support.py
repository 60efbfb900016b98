"""What every operator command shares: the targeting options, one-line errors, output helpers."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer
from rich.console import Console

from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.ops.context import DEFAULT_STACK, OpsContext, aws_errors, resolve_context

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


@dataclass(frozen=True, slots=True)
class Shared:
    """The options every operator command takes: where to act (--stack/--region/--profile/--local) and
    how to print (--json). Written once here; `operator_command` adds them to a command."""

    stack: str
    region: str | None
    profile: str | None
    local: bool
    as_json: bool

    def context(self) -> OpsContext:
        return resolve_context(stack=self.stack, region=self.region, profile=self.profile, local=self.local)


_KW = inspect.Parameter.KEYWORD_ONLY
_SHARED_OPTIONS = (
    inspect.Parameter("stack", _KW, default=DEFAULT_STACK, annotation=Stack),
    inspect.Parameter("region", _KW, default=None, annotation=Region),
    inspect.Parameter("profile", _KW, default=None, annotation=Profile),
    inspect.Parameter("local", _KW, default=False, annotation=Local),
    inspect.Parameter("as_json", _KW, default=False, annotation=AsJson),
)


def show_error(message: str, exit_code: int) -> int:
    """The one way a failure is shown: `error: <reason>` on stderr; returns the exit code to use.
    Plain echo, not rich: a reason must stay on one line whatever the terminal width."""
    typer.echo(f"error: {message}", err=True)
    return exit_code


def one_line_errors(command: Callable[..., R]) -> Callable[..., R]:
    """User-facing failures (ours and botocore's) end as `error: <reason>` and exit codes, never as
    tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        try:
            with aws_errors(command.__name__.replace("_", " ")):
                return command(*args, **kwargs)
        except EventpipeError as exc:
            raise typer.Exit(show_error(str(exc), exc.exit_code)) from None

    return wrapper


def operator_command(command: Callable[..., R]) -> Callable[..., R]:
    """A command that declares `shared: Shared` gets --stack/--region/--profile/--local/--json (after its
    own parameters) and one-line errors."""
    signature = inspect.signature(command)
    hints = get_type_hints(command, include_extras=True)
    own = [
        parameter.replace(annotation=hints.get(parameter.name, parameter.annotation))
        for parameter in signature.parameters.values()
        if parameter.name != "shared"
    ]
    names = [option.name for option in _SHARED_OPTIONS]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        shared = Shared(*(kwargs.pop(name) for name in names))
        return command(*args, shared=shared, **kwargs)

    parameters = [*own, *_SHARED_OPTIONS]
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return one_line_errors(wrapper)


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


def read_json_file(path: Path, what: str) -> Any:
    """The JSON in a file the user named (`what`: "event file", "pattern file"); UsageError in one line."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # also UnicodeDecodeError
        raise UsageError(f"{what} {path} is not valid JSON: {exc}") from None
