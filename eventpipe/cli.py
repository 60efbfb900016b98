"""The `eventpipe` operator CLI. Each area registers its own commands; this module wires them up
and turns every EventpipeError into a one-line reason with a non-zero exit code."""

from __future__ import annotations

import sys

import typer

# typer 0.29 bundles its own click: its usage errors are these classes, not the `click` package's.
from typer._click import exceptions as click_errors

from eventpipe.contract.errors import EventpipeError

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
    # Not standalone: click's own usage errors would be a multi-line framed panel; here every failure,
    # ours or click's, is one `error:` line with the exit code (2 = bad usage).
    try:
        code = app(standalone_mode=False, prog_name="eventpipe")
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()  # a bare group: its help is the answer
        sys.exit(exc.exit_code)
    except click_errors.ClickException as exc:
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except EventpipeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(exc: click_errors.ClickException) -> str:
    message = " ".join(exc.format_message().split())
    command = exc.ctx.command_path if isinstance(exc, click_errors.UsageError) and exc.ctx else None
    return f"{message} (see `{command} --help`)" if command else message


if __name__ == "__main__":
    main()
