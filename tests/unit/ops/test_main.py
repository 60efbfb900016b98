"""The root CLI: local mode and the demo only with the `local` extra, else a one-line install hint."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from eventpipe.contract.errors import UsageError
from eventpipe.ops.main import LOCAL_EXTRA_MISSING, register_local_mode


@pytest.mark.parametrize("args", [["local", "start", "--detach"], ["demo"], ["local"]])
def test_without_the_local_extra_local_commands_say_what_to_install(args: list[str]) -> None:
    app = typer.Typer()
    app.command("version")(lambda: None)
    register_local_mode(app, installed=False)

    result = CliRunner().invoke(app, args)

    assert isinstance(result.exception, UsageError)
    assert str(result.exception) == LOCAL_EXTRA_MISSING


def test_without_the_local_extra_the_help_names_the_extra_to_install() -> None:
    app = typer.Typer()
    app.command("version")(lambda: None)
    register_local_mode(app, installed=False)

    result = CliRunner().invoke(app, ["--help"], terminal_width=200)

    assert "pip install 'eventpipe[local]'" in result.output


def test_with_the_local_extra_the_real_commands_are_registered() -> None:
    app = typer.Typer()
    register_local_mode(app, installed=True)

    result = CliRunner().invoke(app, ["local", "--help"])

    assert result.exit_code == 0
    assert "start" in result.output
    assert "stop" in result.output


def test_the_console_script_reports_the_missing_extra_in_one_line_with_exit_2() -> None:
    code = (
        "import importlib.util, sys; real = importlib.util.find_spec; "
        "importlib.util.find_spec = lambda name, *a: None if name == 'moto' else real(name, *a); "
        "from eventpipe.ops.main import main; main()"
    )

    done = subprocess.run(
        [sys.executable, "-c", code, "local", "start"], capture_output=True, text=True, check=False
    )

    assert done.returncode == 2
    assert done.stderr == f"error: {LOCAL_EXTRA_MISSING}\n"
