"""The `eventpipe` console script: the root app, every command area registered into it, and `main()`.

Operator commands (`eventpipe.ops`) are always there. Local mode and the demo (`eventpipe.local`) are
registered only when the `local` extra is installed (moto); otherwise `eventpipe local ...` and
`eventpipe demo` answer in one line how to install it, so `pip install eventpipe` (no extras) gives a
working CLI without moto, Flask or aws-cdk-lib. This module is the only importer of `eventpipe.local`
(import-linter contract in pyproject.toml).
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Annotated

import typer

# typer 0.29 bundles its own click: its usage errors are these classes, not the `click` package's.
from typer._click import exceptions as click_errors

from eventpipe.contract.errors import EventpipeError, UsageError
from eventpipe.ops.cli_support import TidyGroup, show_error

LOCAL_EXTRA_MISSING = "local mode needs the `local` extra (moto): pip install 'eventpipe[local]'"

app = typer.Typer(
    name="eventpipe",
    help="Operate an eventpipe stack: local mode, consumers, replays, dead letters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # --install-completion / --show-completion (bash, zsh, fish, PowerShell); consumer and replay names
    # complete from the registry files (cli_support.complete_consumer, cli_replay.complete_replay).
    add_completion=True,
    cls=TidyGroup,
)


def _package_version() -> str:
    from importlib.metadata import version as package_version

    return package_version("eventpipe")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_package_version())
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Operate an eventpipe stack: local mode, consumers, replays, dead letters."""


@app.command()
def version() -> None:
    """Print the eventpipe version (same as --version)."""
    typer.echo(_package_version())


def local_mode_installed() -> bool:
    return importlib.util.find_spec("moto") is not None


def _local_extra_missing(
    _args: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
) -> None:
    raise UsageError(LOCAL_EXTRA_MISSING)


def register_local_mode(target: typer.Typer, *, installed: bool | None = None) -> None:
    """`eventpipe local ...` and `eventpipe demo`: the real commands when the `local` extra is installed,
    else stand-ins that say in one line what to install (whatever arguments they are given)."""
    if installed if installed is not None else local_mode_installed():
        from eventpipe.local import cli as local_cli
        from eventpipe.local import demo

        local_cli.register(target)
        demo.register(target)
        return
    stand_in = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
    for name, what in (("local", "Run the whole stack offline"), ("demo", "Run the offline demo")):
        target.command(
            # `\[` keeps rich from reading `[local]` as markup and swallowing it.
            name,
            help=f"{what} (needs: pip install 'eventpipe\\[local]').",
            context_settings=stand_in,
        )(_local_extra_missing)


def _register_areas() -> None:
    from eventpipe.ops import cli as ops_cli
    from eventpipe.ops import cli_pattern

    register_local_mode(app)
    ops_cli.register(app)
    cli_pattern.register(app)


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
        sys.exit(show_error(_one_line(exc), exc.exit_code))
    except typer.Abort:
        sys.exit(show_error("aborted", 1))
    except EventpipeError as exc:
        sys.exit(show_error(str(exc), exc.exit_code))
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(exc: click_errors.ClickException) -> str:
    message = " ".join(exc.format_message().split())
    command = exc.ctx.command_path if isinstance(exc, click_errors.UsageError) and exc.ctx else None
    return f"{message} (see `{command} --help`)" if command else message


if __name__ == "__main__":
    main()
