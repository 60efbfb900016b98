"""`eventpipe pattern test`: would this event reach that consumer? Offline, with EventBridge semantics.

The consumer's rule pattern is rebuilt exactly as the stack builds it (`Consumer.full_pattern`, the
same function the CDK construct calls), so the answer is the deployed rule's answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from eventpipe.contract import outputs
from eventpipe.contract.errors import UsageError
from eventpipe.ops.cli_support import read_json_file

EXAMPLES = """\
Examples:

  eventpipe pattern test --consumer ingest \\
    tests/events/s3_object_created_put_versioned.json

  eventpipe pattern test --consumer delete-sync event.json \\
    --bucket my-ingest-bucket

  eventpipe pattern test --consumer audit event.json --json | jq .matched

Exit code: 0 = the event matches the consumer's rule, 1 = it does not, 2 = usage error.
"""

pattern_app = typer.Typer(
    name="pattern",
    help="Check events against the consumers' EventBridge rules, offline.",
    no_args_is_help=True,
)


@dataclass(frozen=True, slots=True)
class BucketChoice:
    """The bucket the rule is scoped to, and where that name came from (shown to the user)."""

    name: str
    origin: str

    @property
    def note(self) -> str:
        return {
            "option": "bucket from --bucket",
            "local-mode": "bucket of the running local mode",
            "event": "no --bucket, local mode not running: assuming the event's bucket is the stack's",
        }[self.origin]


@dataclass(frozen=True, slots=True)
class PatternTestResult:
    consumer: str
    event_file: str
    matched: bool
    bucket: BucketChoice
    reasons: tuple[str, ...]
    pattern: Mapping[str, Any]
    warnings: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "event": self.event_file,
            "matched": self.matched,
            "bucket": self.bucket.name,
            "bucket_source": self.bucket.origin,
            "reasons": list(self.reasons),
            "pattern": self.pattern,
            "warnings": list(self.warnings),
        }


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root CLI."""
    app.add_typer(pattern_app)


@pattern_app.command("test", epilog=EXAMPLES)
def pattern_test(
    event_file: Annotated[
        Path, typer.Argument(metavar="EVENT.json", help="The event, as EventBridge delivers it.")
    ],
    consumer: Annotated[
        str, typer.Option("--consumer", "-c", help="Consumer name (see `eventpipe consumers`).")
    ],
    bucket: Annotated[
        str | None,
        typer.Option(help="Ingest bucket the rule is scoped to (default: local mode's, else the event's)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Would EVENT.json reach the consumer? Exit 0 if its rule matches, 1 if not."""
    result = run_pattern_test(consumer_name=consumer, event_file=event_file, bucket=bucket)
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
    else:
        for warning in result.warnings:
            typer.echo(f"warning: {warning}", err=True)
        if result.matched:
            typer.echo(f"match: {result.event_file} reaches {result.consumer} ({result.bucket.note})")
        else:
            typer.echo(
                f"no match: {result.event_file} does not reach {result.consumer} ({result.bucket.note})"
            )
            for reason in result.reasons:
                typer.echo(f"  - {reason}")
    raise typer.Exit(0 if result.matched else 1)


def run_pattern_test(*, consumer_name: str, event_file: Path, bucket: str | None) -> PatternTestResult:
    """Evaluate the consumer's deployed pattern against the event file (UsageError on bad input)."""
    from eventpipe.contract.patterns import InvalidPatternError, compile_pattern
    from eventpipe.ops.context import load_registry

    chosen = _find_consumer(consumer_name, load_registry())
    event = _read_event(event_file)
    bucket_choice = _choose_bucket(bucket, event)
    full_pattern = chosen.full_pattern(bucket_choice.name)
    try:
        compiled = compile_pattern(full_pattern)
    except InvalidPatternError as exc:
        raise UsageError(f"consumer {chosen.name!r} has a pattern EventBridge would reject: {exc}") from None
    explanation = compiled.explain(event)
    return PatternTestResult(
        consumer=chosen.name,
        event_file=str(event_file),
        matched=explanation.matched,
        bucket=bucket_choice,
        reasons=tuple(mismatch.reason for mismatch in explanation.mismatches),
        pattern=full_pattern,
        warnings=_shape_warnings(event),
    )


def _find_consumer(name: str, registry: Sequence[Any]) -> Any:
    for consumer in registry:
        if consumer.name == name:
            return consumer
    known = ", ".join(consumer.name for consumer in registry) or "none"
    raise UsageError(f"unknown consumer {name!r}; known consumers: {known}")


def _read_event(path: Path) -> Mapping[str, Any]:
    event = read_json_file(path, "event file")
    if not isinstance(event, dict):
        raise UsageError(f"event file {path} must hold one JSON object (an EventBridge event)")
    return event


def _choose_bucket(option: str | None, event: Mapping[str, Any]) -> BucketChoice:
    if option:
        return BucketChoice(option, "option")
    local_bucket = _local_mode_bucket()
    if local_bucket:
        return BucketChoice(local_bucket, "local-mode")
    detail = event.get("detail")
    bucket_info = detail.get("bucket") if isinstance(detail, Mapping) else None
    name = bucket_info.get("name") if isinstance(bucket_info, Mapping) else None
    if not isinstance(name, str) or not name:
        raise UsageError("the event has no detail.bucket.name: pass --bucket NAME")
    return BucketChoice(name, "event")


def _local_mode_bucket() -> str | None:
    """The stack bucket of a running local mode (a state file whose process is alive), else None."""
    from eventpipe.contract.local_state import pid_alive
    from eventpipe.ops.context import find_state_file

    path = find_state_file()
    if path is None:
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        pid = int(state["pid"])
        bucket = state["outputs"][outputs.BUCKET_NAME]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return bucket if isinstance(bucket, str) and pid_alive(pid) else None


def _shape_warnings(event: Mapping[str, Any]) -> tuple[str, ...]:
    """A hint when the file is not AWS-shaped: the match answer is then about a shape AWS never sends."""
    from eventpipe.contract.event_schema import InvalidS3EventError, load_s3_event_validator

    try:
        validate = load_s3_event_validator()
    except (OSError, ImportError):
        return ()  # installed without the repository's schemas/ or the `local` extra: nothing to compare with
    try:
        validate(event)
    except InvalidS3EventError as exc:
        return (str(exc),)
    return ()
