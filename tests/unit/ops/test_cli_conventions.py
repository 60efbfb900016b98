"""CLI conventions that hold for every command (issue 13): clean metavars, examples that fit 80 columns,
--version, --local vs an explicit --stack/--stage, snake_case JSON keys."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from eventpipe.contract.errors import UsageError
from eventpipe.ops import cli_support
from eventpipe.ops.cli_support import Shared, snake_keys
from eventpipe.ops.context import OpsContext
from eventpipe.ops.main import app

FORBIDDEN = ("<bool>", "<str>", "<list[", "<float>", "<int", "<path>", "{")


def _command_paths() -> list[list[str]]:
    def walk(command: Any, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    return walk(typer.main.get_command(app), [])


def _help(path: list[str]) -> tuple[Any, str]:
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=80, env={"COLUMNS": "80"})
    return command, result.output


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "eventpipe")
def test_help_at_80_columns_has_clean_metavars_and_unbroken_examples(path: list[str]) -> None:
    command, output = _help(path)

    assert [marker for marker in FORBIDDEN if marker in output] == []
    # Every example line of the docstring/epilog appears whole on one rendered line.
    source = f"{command.help or ''}\n{command.epilog or ''}"
    examples = [line.strip() for line in source.splitlines() if line.strip().startswith("eventpipe ")]
    rendered = {line.strip() for line in output.splitlines()}
    assert [line for line in examples if line not in rendered] == []


def test_version_flag_prints_the_version_and_exits_0() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.output.strip() == version("eventpipe")


def test_completion_is_offered() -> None:
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)

    assert "--install-completion" in result.output


def test_consumer_names_complete_from_the_registry() -> None:
    assert cli_support.complete_consumer("de") == ["delete-sync"]


def _local_ctx() -> OpsContext:
    return OpsContext.from_outputs({}, stack="eventpipe-dev", endpoint="http://127.0.0.1:1", registry=())


@pytest.mark.parametrize(
    ("stage", "stack", "named"),
    [(None, "eventpipe-prod", "--stack eventpipe-prod"), ("prod", None, "--stage prod")],
)
def test_local_and_a_disagreeing_stack_or_stage_is_a_one_line_usage_error(
    monkeypatch: pytest.MonkeyPatch, stage: str | None, stack: str | None, named: str
) -> None:
    monkeypatch.setattr(cli_support, "resolve_context", lambda **_: _local_ctx())
    shared = Shared(stage=stage, explicit_stack=stack, region=None, profile=None, local=True, as_json=False)

    with pytest.raises(UsageError) as raised:
        shared.context()

    assert f"{named} names eventpipe-prod" in str(raised.value)
    assert "running local mode (eventpipe-dev)" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_local_with_the_matching_stage_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_support, "resolve_context", lambda **_: _local_ctx())
    shared = Shared(stage="dev", explicit_stack=None, region=None, profile=None, local=True, as_json=False)

    assert shared.context().stack == "eventpipe-dev"


@pytest.mark.parametrize(
    ("stage", "stack", "expected"),
    [(None, None, "eventpipe-dev"), ("prod", None, "eventpipe-prod"), ("prod", "other-stack", "other-stack")],
)
def test_stage_names_the_stack_and_stack_overrides_it(
    stage: str | None, stack: str | None, expected: str
) -> None:
    shared = Shared(stage=stage, explicit_stack=stack, region=None, profile=None, local=False, as_json=False)

    assert shared.stack == expected


def test_json_keys_are_snake_case_but_patterns_stay_verbatim() -> None:
    data = {
        "replayName": "r",
        "lastReplay": {"filterArns": ["a"]},
        "pattern": {"detail-type": ["X"], "fooBar": 1},
    }

    assert snake_keys(data) == {
        "replay_name": "r",
        "last_replay": {"filter_arns": ["a"]},
        "pattern": {"detail-type": ["X"], "fooBar": 1},
    }
