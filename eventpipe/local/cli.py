"""`eventpipe local start|stop|status`: the embedded AWS (moto + the project's event engine and
Lambda runtime) with the real stack deployed into it."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventpipe.contract.errors import EventpipeError
from eventpipe.contract.local_state import STATE_DIR_ENV

if TYPE_CHECKING:
    from eventpipe.local.emulator import Emulator

local_app = typer.Typer(
    name="local", help="Run the whole stack offline on an embedded AWS.", no_args_is_help=True
)

StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", envvar=STATE_DIR_ENV, help="Where state.json and logs live."),
]


@local_app.command()
def start(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port of the AWS endpoint (0 = any free port).")
    ] = 0,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background and return when deployed.")
    ] = False,
    stage: Annotated[str, typer.Option("--stage", help="Which synthesized stack to deploy.")] = "dev",
    template: Annotated[
        Path | None, typer.Option("--template", help="Template file (default: cdk.out).")
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Start the emulator and deploy the stack; runs until Ctrl-C unless --detach.

    Examples:

      eventpipe local start --detach

      eventpipe local start --port 4566 --state-dir /tmp/eventpipe-local
    """
    from eventpipe.local.emulator import Emulator

    typer.echo("starting the embedded AWS and deploying the stack...", err=True)
    emulator = Emulator.start(port=port, stage=stage, template=template, state_dir=state_dir, detach=detach)
    state = emulator.state
    typer.echo(f"ready in {state.get('startup_seconds', 0):.1f}s: {emulator.stack} at {emulator.endpoint}")
    typer.echo(f"  {export_line(emulator)}")
    typer.echo(f"  logs: {emulator.state_dir}")
    if detach:
        typer.echo("  stop it with: eventpipe local stop")
        return
    typer.echo("press Ctrl-C to stop", err=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the emulator like Ctrl-C does
    try:
        while emulator.running():
            time.sleep(0.5)
        if emulator.exit_code != 0:  # 0: it was stopped by a signal (e.g. Ctrl-C in this terminal)
            raise EventpipeError(
                f"the emulator stopped unexpectedly (log: {emulator.state_dir / 'emulator.log'})"
            )
        typer.echo("the emulator stopped", err=True)
    except KeyboardInterrupt:
        typer.echo("stopping...", err=True)
    finally:
        emulator.stop()


@local_app.command()
def stop(state_dir: StateDir = None) -> None:
    """Stop the running emulator.

    Example:

      eventpipe local stop --state-dir /tmp/eventpipe-local
    """
    from eventpipe.local.emulator import Emulator

    emulator = Emulator.attach(state_dir)
    emulator.stop()
    typer.echo(f"stopped the emulator (pid {emulator.pid})")


@local_app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
    state_dir: StateDir = None,
) -> None:
    """Show the endpoint and the stack outputs; exits non-zero when nothing is running.

    Examples:

      eventpipe local status

      eventpipe local status --json | jq -r .outputs.BucketName
    """
    from eventpipe.local.emulator import Emulator

    emulator = Emulator.attach(state_dir)
    engine = _engine_status(emulator)
    if as_json:
        typer.echo(json.dumps({**emulator.state, "engine": engine}, indent=2, sort_keys=True))
        return
    typer.echo(
        f"running: {emulator.stack} at {emulator.endpoint} (pid {emulator.pid}, region {emulator.region})"
    )
    typer.echo(f"  {export_line(emulator)}")
    width = max((len(key) for key in emulator.outputs), default=0)
    for key, value in sorted(emulator.outputs.items()):
        typer.echo(f"  {key:<{width}}  {value}")
    if engine:
        counters = ", ".join(f"{name} {count}" for name, count in engine.get("stats", {}).items())
        typer.echo(f"events: {counters}; pending deliveries {engine.get('pending_deliveries', 0)}")


def export_line(emulator: Emulator) -> str:
    """The shell line that points the AWS CLI and boto3 at this run (its generated credentials: the
    emulator accepts no others)."""
    credentials = emulator.credentials
    return (
        f"export AWS_ENDPOINT_URL={emulator.endpoint} AWS_ACCESS_KEY_ID={credentials.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={credentials.secret_access_key} AWS_DEFAULT_REGION={emulator.region}"
    )


def _engine_status(emulator: Emulator) -> dict[str, Any]:
    """The event engine's counters; empty if the control endpoint does not answer."""
    try:
        return emulator.status()
    except (OSError, EventpipeError):
        return {}


def register(app: typer.Typer) -> None:
    """Add `eventpipe local ...` to the root CLI."""
    app.add_typer(local_app)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
