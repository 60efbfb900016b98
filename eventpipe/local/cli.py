"""`eventpipe local start|stop|status`: the embedded AWS (moto + the project's event engine and
Lambda runtime) with the real stack deployed into it."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from eventpipe.contract import outputs
from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.contract.local_state import STATE_DIR_ENV
from eventpipe.ops.context import aws_errors

if TYPE_CHECKING:
    from eventpipe.local.emulator import Emulator

local_app = typer.Typer(
    name="local", help="Run the whole stack offline on an embedded AWS.", no_args_is_help=True
)

StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", envvar=STATE_DIR_ENV, help="Where state.json and logs live."),
]
Context = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        "-c",
        metavar="KEY=VALUE",
        help="CDK context for the synth, as `cdk synth -c` (repeatable): eventpipe.STAGE.SETTING=VALUE.",
    ),
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
    context: Context = None,
) -> None:
    """Start the emulator and deploy the stack; runs until Ctrl-C unless --detach.

    -c overrides a stage setting for this run (docs/configuration.md); the stack is synthesized with
    them into a template of its own. A malformed or unknown key, or a bad value, exits 2.

    Examples:

      eventpipe local start --detach

      eventpipe local start --port 4566 --state-dir /tmp/eventpipe-local

      eventpipe local start -c eventpipe.dev.log_level=DEBUG
    """
    from eventpipe.local.deploy import parse_context
    from eventpipe.local.emulator import Emulator

    overrides = parse_context(context or [], stage)
    if overrides and template is not None:
        raise UsageError("-c and --template exclude each other: -c needs the stack synthesized")
    if overrides:
        typer.echo(f"synthesizing eventpipe-{stage} with {', '.join(overrides)}...", err=True)
    typer.echo("starting the embedded AWS and deploying the stack...", err=True)
    emulator = Emulator.start(
        port=port, stage=stage, template=template, state_dir=state_dir, detach=detach, context=overrides
    )
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
    for mapping in engine.get("event_source_mappings", []):
        typer.echo(
            f"sqs {mapping['queue']} -> {mapping['function']} ({mapping['state']}, batch "
            f"{mapping['batch_size']}, max concurrency {mapping['maximum_concurrency']}): "
            f"invocations {mapping['invocations']}, errors {mapping['function_errors']}, "
            f"deleted {mapping['deleted']}, retried {mapping['retried']}, "
            f"in flight {mapping['in_flight_batches']}"
        )


Rejects = Annotated[
    bool,
    typer.Option("--rejects", help="The rejects bucket (rejects reports) instead of the ingest bucket."),
]


def _bucket(emulator: Emulator, rejects: bool) -> str:
    key = outputs.REJECTS_BUCKET_NAME if rejects else outputs.BUCKET_NAME
    name = emulator.outputs.get(key)
    if not name:
        raise EventpipeError(
            f"the local stack has no output {key!r}: restart it with `eventpipe local start`"
        )
    return name


@local_app.command()
def put(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The file to upload.")],
    key: Annotated[
        str | None, typer.Argument(metavar="KEY", help="Object key (default: the file's name).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Return once every consumer has handled the upload.")
    ] = False,
    state_dir: StateDir = None,
) -> None:
    """Upload a file to the local ingest bucket (what `aws s3 cp FILE s3://BUCKET/KEY` does).

    Examples:

      eventpipe local put samples/sample.json --wait

      eventpipe local put people.jsonl people/team.jsonl
    """
    from eventpipe.local.emulator import Emulator

    emulator = Emulator.attach(state_dir)
    try:
        body = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    bucket, key = _bucket(emulator, rejects=False), key or file.name
    with aws_errors(f"uploading {file}"):
        answer = emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    version = answer.get("VersionId")
    typer.echo(f"put s3://{bucket}/{key} ({len(body)} bytes{f', version {version}' if version else ''})")
    if wait:
        try:
            emulator.wait_idle(timeout=60)
        except TimeoutError:
            raise EventpipeError(
                "the consumers were still busy after 60s: see `eventpipe local status`"
            ) from None
        typer.echo("handled: every consumer is idle")


@local_app.command()
def get(
    key: Annotated[str, typer.Argument(metavar="KEY", help="Object key.")],
    rejects: Rejects = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write here instead of stdout.")
    ] = None,
    state_dir: StateDir = None,
) -> None:
    """Print an object of the local ingest (or rejects) bucket.

    Examples:

      eventpipe local get sample.json

      eventpipe local get sample.json -o copy.json
    """
    from eventpipe.local.emulator import Emulator

    emulator = Emulator.attach(state_dir)
    bucket = _bucket(emulator, rejects)
    with aws_errors(f"reading s3://{bucket}/{key}"):
        body = emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        output.write_bytes(body)


@local_app.command("ls")
def list_objects(
    prefix: Annotated[str, typer.Argument(metavar="PREFIX", help="Only keys starting with this.")] = "",
    rejects: Rejects = False,
    state_dir: StateDir = None,
) -> None:
    """List the objects of the local ingest (or rejects) bucket: last modified, size, key.

    Examples:

      eventpipe local ls

      eventpipe local ls --rejects rejects/
    """
    from eventpipe.local.emulator import Emulator

    emulator = Emulator.attach(state_dir)
    bucket = _bucket(emulator, rejects)
    with aws_errors(f"listing s3://{bucket}"):
        pages = emulator.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                modified = item["LastModified"].strftime("%Y-%m-%d %H:%M:%S")
                typer.echo(f"{modified}  {item['Size']:>10}  {item['Key']}")


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
