"""What every operator command shares: the targeting options, one-line errors, output helpers."""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer
from rich.console import Console
from typer.core import TyperArgument, TyperGroup, TyperOption

from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.ops.context import DEFAULT_STACK, OpsContext, aws_errors, resolve_context

R = TypeVar("R")

# Tables and results on stdout; progress, warnings and errors on stderr (stdout stays clean for --json).
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

DEFAULT_STAGE = DEFAULT_STACK.removeprefix("eventpipe-")


def stack_for_stage(stage: str) -> str:
    """The stack a stage deploys as (infra names it `eventpipe-<stage>`)."""
    return f"eventpipe-{stage}"


def complete_consumer(incomplete: str) -> list[str]:
    """Shell completion for consumer names: the registry files (eventpipe/contract/consumers + data
    files), read offline; never an AWS call while the user presses Tab."""
    from eventpipe.ops.context import load_registry

    try:
        names = [consumer.name for consumer in load_registry()]
    except Exception:  # a broken registry must not break the user's shell
        return []
    return [name for name in names if name.startswith(incomplete)]


Stage = Annotated[
    str | None,
    typer.Option(
        "--stage",
        envvar="EVENTPIPE_STAGE",
        metavar="STAGE",
        help=f"Stage to act on: its stack is eventpipe-STAGE (default: {DEFAULT_STAGE}).",
        show_default=False,
    ),
]
Stack = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar="EVENTPIPE_STACK",
        metavar="STACK",
        help="Explicit CloudFormation stack name; overrides --stage.",
        show_default=False,
    ),
]
Region = Annotated[
    str | None,
    typer.Option(
        "--region", metavar="REGION", help="AWS region (default: the profile's, else AWS_DEFAULT_REGION)."
    ),
]
Profile = Annotated[str | None, typer.Option("--profile", metavar="PROFILE", help="AWS named profile.")]
Local = Annotated[
    bool,
    typer.Option("--local", help="Act on the running local mode (also when EVENTPIPE_LOCAL=1)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (snake_case keys) instead of tables.")]
ConsumerName = Annotated[
    str,
    typer.Option(
        "--consumer",
        "-c",
        metavar="NAME",
        help="Consumer name (see `eventpipe consumers`).",
        autocompletion=complete_consumer,
    ),
]


@dataclass(frozen=True, slots=True)
class Shared:
    """The options every operator command takes: where to act (--stack/--region/--profile/--local) and
    how to print (--json). Written once here; `operator_command` adds them to a command."""

    stage: str | None
    explicit_stack: str | None
    region: str | None
    profile: str | None
    local: bool
    as_json: bool

    @property
    def stack(self) -> str:
        """--stack if given, else the stage's stack (default eventpipe-dev)."""
        return self.requested_stack or DEFAULT_STACK

    @property
    def requested_stack(self) -> str | None:
        """The stack the user named (--stack, else --stage; their env vars count), or None."""
        if self.explicit_stack:
            return self.explicit_stack
        return stack_for_stage(self.stage) if self.stage else None

    def context(self) -> OpsContext:
        ctx = resolve_context(stack=self.stack, region=self.region, profile=self.profile, local=self.local)
        requested = self.requested_stack
        if ctx.local and requested and requested != ctx.stack:
            option = f"--stack {self.explicit_stack}" if self.explicit_stack else f"--stage {self.stage}"
            raise UsageError(
                f"--local acts on the running local mode ({ctx.stack}) but {option} names {requested}: "
                "drop one of them"
            )
        return ctx


_KW = inspect.Parameter.KEYWORD_ONLY
_SHARED_OPTIONS = (
    inspect.Parameter("stage", _KW, default=None, annotation=Stage),
    inspect.Parameter("explicit_stack", _KW, default=None, annotation=Stack),
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


# Values kept verbatim under these keys: they are EventBridge documents, not our output's own keys.
_VERBATIM_KEYS = frozenset({"pattern"})
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_keys(data: Any) -> Any:
    """One JSON key style for every command: snake_case (`replayName` -> `replay_name`). Pattern
    documents are left as EventBridge spells them."""
    if isinstance(data, dict):
        return {
            _CAMEL_HUMP.sub(r"_\1", key).lower() if isinstance(key, str) else key: (
                value if key in _VERBATIM_KEYS else snake_keys(value)
            )
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [snake_keys(item) for item in data]
    return data


def print_json(data: Any) -> None:
    typer.echo(json.dumps(snake_keys(data), indent=2, default=str))


def tidy_help(command: Any) -> None:
    """Clean metavars in every help screen below `command`: flags show none (typer 0.29 prints
    `<bool>`), values show a NAME (not `<str>`, `<list[str]>`), arguments show NAME in the usage line
    (not `{name}`), choices show `[a|b]`. Applied once to the whole tree, so commands added later
    by anyone get it too."""
    for param in getattr(command, "params", ()):
        if isinstance(param, TyperOption):
            if param.is_flag:
                param.metavar = ""
            elif param.metavar is None:
                descriptor = param.type_descriptor
                choices = descriptor.choices if descriptor.is_choice else None
                param.metavar = (
                    "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
                    if choices
                    else (param.name or "value").upper()
                )
        elif isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = (param.name or "arg").upper()
            # typer 0.29 has no setting for these two: the NAME column says it already (typer would add
            # `<str>` / `<path>` beside it), and the usage line shows NAME, or [NAME] when optional
            # (typer writes `{NAME}`).
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
            usage = param.metavar if param.required else f"[{param.metavar}]"
            param._usage_display_name = lambda usage=usage: usage  # type: ignore[method-assign, misc]
    _flag_help_option(command)
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


def _flag_help_option(command: Any) -> None:
    """--help is built lazily by click (not in `params`): give it no metavar when it is built."""
    build = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = build(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option


class TidyGroup(TyperGroup):
    """The root group: tidies every help screen of the tree before parsing (see `tidy_help`)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        tidy_help(self)
        return super().main(*args, **kwargs)


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


def describe(pattern: Any) -> str:
    """The consumer's own part of a rule pattern in a few words, for a table at 80 columns:
    `Object Deleted; key ends .json(.gz) .jsonl(.gz) .ndjson(.gz)`. Fields this summary does not know
    are shown as compact JSON; `--json` shows the whole pattern."""
    own = json.loads(compact(pattern)) if pattern is not None and compact(pattern).startswith("{") else None
    if own is None:
        return compact(pattern)
    parts: list[str] = []
    detail_types = own.pop("detail-type", None)
    if isinstance(detail_types, list) and all(isinstance(v, str) for v in detail_types):
        parts.append(" | ".join(detail_types))
    elif detail_types is not None:
        own["detail-type"] = detail_types
    key_filter = own.get("detail", {}).get("object", {}).get("key")
    if isinstance(key_filter, list) and key_filter and all(_one_key_matcher(m) for m in key_filter):
        for kind in ("suffix", "prefix"):
            values = [m[kind] for m in key_filter if kind in m]
            if values:
                parts.append(f"key {'ends' if kind == 'suffix' else 'starts'} {_with_gzip(values)}")
        del own["detail"]["object"]["key"]
        if not own["detail"]["object"]:
            del own["detail"]["object"]
        if not own["detail"]:
            del own["detail"]
    if own:
        parts.append(json.dumps(own, separators=(", ", ":")))
    return "; ".join(parts)


def _one_key_matcher(matcher: Any) -> bool:
    return (
        isinstance(matcher, dict)
        and len(matcher) == 1
        and set(matcher) <= {"suffix", "prefix"}
        and all(isinstance(v, str) for v in matcher.values())
    )


def _with_gzip(values: list[str]) -> str:
    """`.json .json.gz` -> `.json(.gz)`: the gzip twin of a value is folded into it."""
    shown = [v for v in values if not (v.endswith(".gz") and v[:-3] in values)]
    return " ".join(f"{v}(.gz)" if f"{v}.gz" in values else v for v in shown)


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
