"""`eventpipe events tail` and `eventpipe logs CONSUMER`: watch the pipeline as it runs."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Annotated, Any

import typer

from eventpipe.contract.errors import UsageError
from eventpipe.ops import follow
from eventpipe.ops.cli_support import Shared, operator_command
from eventpipe.ops.context import OpsContext
from eventpipe.ops.timeparse import parse_time

events_app = typer.Typer(help="Follow the events on the project bus.", no_args_is_help=True)

TailConsumer = Annotated[
    str | None,
    typer.Option(
        "--consumer",
        "-c",
        metavar="NAME",
        help="Only the events this consumer's rule matches (default: all).",
    ),
]
Since = Annotated[
    str | None,
    typer.Option("--since", metavar="TIME", help="Start this far back: 10m, 2h, or an ISO-8601 time."),
]
Follow = Annotated[
    bool, typer.Option("--follow/--no-follow", "-f", help="Keep waiting for new lines (Ctrl-C stops).")
]
Limit = Annotated[
    int | None, typer.Option("--limit", min=1, metavar="N", help="Stop after N events or lines.")
]


@events_app.command("tail")
@operator_command
def events_tail(
    shared: Shared,
    consumer: TailConsumer = None,
    since: Since = None,
    follow_: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Keep waiting for new events (Ctrl-C stops).")
    ] = True,
    limit: Limit = None,
) -> None:
    """Print events as the project bus receives them: time, type, key, matched rules.

    Local mode: reads the engine's events log (--since shows older events first).

    AWS: a temporary rule sends to a temporary SQS queue, both removed on exit.

    On AWS only new events are shown (no --since; `eventpipe replay` for the past).

    Cost and IAM needs: docs/operations.md, "Follow events and logs".

    --json prints one JSON object per line (JSON Lines).

    Examples:

      eventpipe events tail --local

      eventpipe events tail --local --since 10m --no-follow --json

      eventpipe events tail --consumer ingest --stack eventpipe-prod
    """
    ctx = shared.context()
    rule = ctx.deployed_consumer(consumer).rule_name if consumer else None
    start = parse_time(since) if since else None
    if ctx.local:
        tailed: Iterator[follow.TailedEvent] = (
            event
            for event in follow.local_events(
                ctx, since=start, follow=follow_, on_ready=_ready(ctx, shared) if follow_ else _nothing
            )
            if rule is None or rule in (event.rules or [])
        )
        _print_events(tailed, shared, limit)
        return
    if start is not None:
        raise UsageError(
            "--since needs local mode: on AWS the tail sees new events only (`eventpipe replay`)"
        )
    if not follow_:
        raise UsageError("--no-follow needs local mode: on AWS the tail sees new events only")
    pattern = follow.rule_pattern(ctx, rule) if rule else follow.EVERY_EVENT
    with _stop_on_signals(), follow.TemporaryTap(ctx, pattern) as tap:
        try:
            _ready(ctx, shared)()
            _print_events(_tap_events(tap), shared, limit)
        finally:
            tap.close()
            for leftover in tap.leftovers:
                typer.echo(f"warning: could not remove the temporary {leftover}: remove it by hand", err=True)


def _tap_events(tap: follow.TemporaryTap) -> Iterator[follow.TailedEvent]:
    while True:
        yield from tap.receive()


def logs(
    shared: Shared,
    consumer: Annotated[str, typer.Argument(metavar="CONSUMER", help="A Lambda consumer (e.g. ingest).")],
    follow_: Follow = False,
    since: Annotated[
        str,
        typer.Option("--since", metavar="TIME", help="Start this far back: 10m, 2h, or an ISO-8601 time."),
    ] = "10m",
    limit: Limit = None,
) -> None:
    """Print a Lambda consumer's log lines; --follow keeps printing new ones.

    AWS: CloudWatch Logs FilterLogEvents on the function's log group.

    Local mode: the worker's log file; --since picks invocations by their log times.

    Examples:

      eventpipe logs ingest --local --follow

      eventpipe logs delete-sync --since 1h --stack eventpipe-prod
    """
    ctx = shared.context()
    function_name = ctx.component(consumer).function_name  # a consumer or the range worker
    if not function_name:
        raise UsageError(f"consumer {consumer!r} has no Lambda function: its target keeps no log")
    start = parse_time(since)
    ready = _ready(ctx, shared, what=f"logs of {function_name}") if follow_ else _nothing
    lines: Iterator[Any]
    if ctx.local:
        path = follow.local_log_file(function_name)
        if not path.exists() and not follow_:
            return  # not invoked yet: nothing logged
        lines = follow.local_log_lines(path, since=start, follow=follow_, on_ready=ready)
    else:
        group = follow.function_log_group(ctx, function_name)
        lines = follow.cloudwatch_log_lines(ctx, group, since=start, follow=follow_, on_ready=ready)
    with _stop_on_signals():
        for count, line in enumerate(lines, start=1):
            if isinstance(line, follow.LogLine):
                if shared.as_json:
                    _json_line({"time": _iso(line.at), "stream": line.stream, "message": line.message})
                else:
                    typer.echo(f"{_iso(line.at)} {line.message}")
            elif shared.as_json:
                _json_line({"time": None, "stream": "local", "message": line})
            else:
                typer.echo(line)
            if limit is not None and count >= limit:
                return


def _print_events(events: Iterator[follow.TailedEvent], shared: Shared, limit: int | None) -> None:
    try:
        for count, event in enumerate(events, start=1):
            if shared.as_json:
                _json_line(event.as_json())
            else:
                rules = ",".join(event.rules) if event.rules else "-"
                replay = f" (replay {event.replay_name})" if event.replay_name else ""
                typer.echo(
                    f"{_iso(event.received_at)}  {event.event.get('detail-type', '?')}  "
                    f"{event.object_key or '-'}  -> {rules}{replay}"
                )
            if limit is not None and count >= limit:
                return
    except KeyboardInterrupt:
        return


def _json_line(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, separators=(",", ":"), default=str))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _nothing() -> None:
    return None


def _ready(ctx: OpsContext, shared: Shared, what: str | None = None) -> Callable[[], None]:
    """Says on stderr that following has begun (scripts and tests wait for it); stdout stays data."""

    def announce() -> None:
        where = "local mode" if ctx.local else ctx.stack
        # Plain echo, not rich: one line whatever the terminal width (tests and scripts wait for it).
        typer.echo(f"following {what or 'events on the project bus'} in {where} (Ctrl-C stops)", err=True)

    return announce


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the command like Ctrl-C, so `finally` blocks (the tap's removal) run."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    except KeyboardInterrupt:
        return
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    """Add `eventpipe events ...` and `eventpipe logs` to the root CLI."""
    app.add_typer(events_app, name="events")
    app.command("logs")(operator_command(logs))
