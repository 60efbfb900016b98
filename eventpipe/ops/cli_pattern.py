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

from eventpipe.contract.errors import UsageError
from eventpipe.ops.cli_support import read_json_file

EXAMPLES = """\
Examples:

  eventpipe pattern test tests/events/s3_object_created_put_versioned.json

  eventpipe pattern test --consumer ingest \\
    tests/events/s3_object_created_put_versioned.json

  eventpipe pattern test --consumer delete-sync event.json \\
    --bucket my-ingest-bucket

  eventpipe pattern test --pattern my-rule.json event.json --json

Without --consumer or --pattern every consumer is checked. The bucket a
consumer's rule is scoped to is --bucket, else the event's own bucket.
Exit code: 0 = the event matches (at least one rule), 1 = it matches none,
2 = usage error.
"""

pattern_app = typer.Typer(
    name="pattern",
    help="Check events against the consumers' EventBridge rules, offline.",
    no_args_is_help=True,
)


@dataclass(frozen=True, slots=True)
class BucketChoice:
    """The bucket the rules are scoped to, and where that name came from (shown to the user)."""

    name: str
    origin: str

    @property
    def note(self) -> str:
        return {
            "option": "bucket from --bucket",
            "event": "no --bucket: assuming the event's bucket is the stack's",
        }[self.origin]


@dataclass(frozen=True, slots=True)
class PatternTestResult:
    """One rule's answer for the event: `consumer` is the consumer's name, or the pattern file's path."""

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
        str | None,
        typer.Option("--consumer", "-c", help="Check one consumer (see `eventpipe consumers`)."),
    ] = None,
    pattern_file: Annotated[
        Path | None,
        typer.Option("--pattern", metavar="PATTERN.json", help="Check an ad-hoc EventBridge pattern."),
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option(help="Ingest bucket the consumers' rules are scoped to (default: the event's)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Would EVENT.json reach the consumers (or one, or a pattern)? Exit 0 if a rule matches, 1 if not."""
    if consumer is not None and pattern_file is not None:
        raise UsageError("--consumer and --pattern are alternatives: give one, or neither for every consumer")
    if consumer is None and pattern_file is None:
        results = run_pattern_tests(event_file=event_file, bucket=bucket)
        _print_all(results, as_json=as_json)
        raise typer.Exit(0 if any(result.matched for result in results) else 1)
    if pattern_file is not None:
        result = run_ad_hoc_pattern(pattern_file=pattern_file, event_file=event_file)
    else:
        result = run_pattern_test(consumer_name=str(consumer), event_file=event_file, bucket=bucket)
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


def _print_all(results: Sequence[PatternTestResult], *, as_json: bool) -> None:
    if as_json:
        first = results[0]
        typer.echo(
            json.dumps(
                {
                    "event": first.event_file,
                    "bucket": first.bucket.name,
                    "bucket_source": first.bucket.origin,
                    "matched": [r.consumer for r in results if r.matched],
                    "results": [r.as_json() for r in results],
                    "warnings": list(first.warnings),
                },
                indent=2,
            )
        )
        return
    for warning in results[0].warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"{results[0].event_file} ({results[0].bucket.note}):")
    for result in results:
        mark = "✓" if result.matched else "✗"
        why = f": {'; '.join(result.reasons)}" if result.reasons else ""
        typer.echo(f"  {mark} {result.consumer}{why}")


def run_pattern_tests(*, event_file: Path, bucket: str | None) -> list[PatternTestResult]:
    """Every registered consumer's deployed pattern against the event file."""
    from eventpipe.ops.context import load_registry

    registry = load_registry()
    if not registry:
        raise UsageError("no consumers are registered (consumers/*.json)")
    return [
        run_pattern_test(consumer_name=consumer.name, event_file=event_file, bucket=bucket)
        for consumer in registry
    ]


def run_ad_hoc_pattern(*, pattern_file: Path, event_file: Path) -> PatternTestResult:
    """An EventBridge pattern from a file, exactly as written (no source or bucket added)."""
    pattern = read_json_file(pattern_file, "pattern file")
    if not isinstance(pattern, dict):
        raise UsageError(f"pattern file {pattern_file} must hold one JSON object (an EventBridge pattern)")
    event = _read_event(event_file)
    matched, reasons = _evaluate(pattern, event, what=f"the pattern in {pattern_file}")
    return PatternTestResult(
        consumer=str(pattern_file),
        event_file=str(event_file),
        matched=matched,
        bucket=_choose_bucket(None, event, required=False),
        reasons=reasons,
        pattern=pattern,
        warnings=_shape_warnings(event),
    )


def run_pattern_test(*, consumer_name: str, event_file: Path, bucket: str | None) -> PatternTestResult:
    """Evaluate the consumer's deployed pattern against the event file (UsageError on bad input)."""
    from eventpipe.ops.context import load_registry

    chosen = _find_consumer(consumer_name, load_registry())
    event = _read_event(event_file)
    bucket_choice = _choose_bucket(bucket, event)
    full_pattern = chosen.full_pattern(bucket_choice.name)
    matched, reasons = _evaluate(full_pattern, event, what=f"consumer {chosen.name!r} has a pattern that")
    return PatternTestResult(
        consumer=chosen.name,
        event_file=str(event_file),
        matched=matched,
        bucket=bucket_choice,
        reasons=reasons,
        pattern=full_pattern,
        warnings=_shape_warnings(event),
    )


def _evaluate(
    pattern: Mapping[str, Any], event: Mapping[str, Any], *, what: str
) -> tuple[bool, tuple[str, ...]]:
    from eventpipe.contract.patterns import InvalidPatternError, compile_pattern

    try:
        compiled = compile_pattern(dict(pattern))
    except InvalidPatternError as exc:
        raise UsageError(f"{what} EventBridge would reject: {exc}") from None
    explanation = compiled.explain(event)
    return explanation.matched, tuple(mismatch.reason for mismatch in explanation.mismatches)


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


def _choose_bucket(option: str | None, event: Mapping[str, Any], *, required: bool = True) -> BucketChoice:
    """--bucket, else the event's own bucket: never whatever emulator happens to be running, so the
    answer depends only on the command line and the file."""
    if option:
        return BucketChoice(option, "option")
    detail = event.get("detail")
    bucket_info = detail.get("bucket") if isinstance(detail, Mapping) else None
    name = bucket_info.get("name") if isinstance(bucket_info, Mapping) else None
    if not isinstance(name, str) or not name:
        if not required:
            return BucketChoice("", "event")
        raise UsageError("the event has no detail.bucket.name: pass --bucket NAME")
    return BucketChoice(name, "event")


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
