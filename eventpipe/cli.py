"""The `eventpipe` operator CLI. Each area registers its own commands; this module wires them up
and turns every EventpipeError into a one-line reason with a non-zero exit code."""

from __future__ import annotations

import sys

import typer

from eventpipe.errors import EventpipeError

app = typer.Typer(
    name="eventpipe",
    help="Operate an eventpipe stack: local mode, consumers, replays, dead letters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_areas() -> None:
    # Imported here so `eventpipe --help` stays cheap and each area owns its module.
    from eventpipe import demo, pattern_cli
    from eventpipe.local import cli as local_cli
    from eventpipe.ops import cli as ops_cli

    for area in (local_cli, ops_cli, pattern_cli, demo):
        area.register(app)


@app.callback()
def _root() -> None:
    """Operate an eventpipe stack: local mode, consumers, replays, dead letters."""


@app.command()
def version() -> None:
    """Print the eventpipe version."""
    from importlib.metadata import version as package_version

    typer.echo(package_version("eventpipe"))


_register_areas()


def main() -> None:
    try:
        app()  # standalone mode: click reports usage errors itself (exit 2)
    except EventpipeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
