"""`-c KEY=VALUE` context overrides of local mode: read as `cdk synth -c` reads them, refused early."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eventpipe.contract.errors import UsageError
from eventpipe.local.deploy import parse_context, template_path


def test_a_stage_setting_is_kept_as_the_string_cdk_passes() -> None:
    assert parse_context(
        ["eventpipe.dev.log_level=DEBUG", "eventpipe.dev.lambda_retry_attempts=0"], "dev"
    ) == {
        "eventpipe.dev.log_level": "DEBUG",
        "eventpipe.dev.lambda_retry_attempts": "0",
    }


def test_a_value_may_hold_an_equals_sign_like_with_cdk() -> None:
    overrides = parse_context(['eventpipe.dev.function_memory_mb={"ingest": 1024}'], "dev")
    assert json.loads(overrides["eventpipe.dev.function_memory_mb"]) == {"ingest": 1024}


@pytest.mark.parametrize(
    ("pair", "reason"),
    [
        ("log_level", "expected KEY=VALUE"),
        ("=DEBUG", "expected KEY=VALUE"),
        ("eventpipe.dev.no_such_setting=1", "unknown key"),
        ("stage=prod", "unknown key"),
        ("eventpipe.prod.log_level=DEBUG", "names stage 'prod'"),
        ("eventpipe.dev.log_level=LOUD", "must be one of"),
        ("eventpipe.dev.lambda_retry_attempts=9", "between 0 and 2"),
    ],
)
def test_malformed_unknown_or_invalid_overrides_are_usage_errors(pair: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        parse_context([pair], "dev")


def test_overrides_get_a_template_of_their_own() -> None:
    plain = template_path("dev")
    debug = template_path("dev", context={"eventpipe.dev.log_level": "DEBUG"})
    assert debug != plain
    assert debug.parent == plain.parent
    assert debug == template_path("dev", context={"eventpipe.dev.log_level": "DEBUG"})  # cached per set


@pytest.mark.parametrize("command", [["local", "start"], ["demo"]])
def test_a_bad_override_is_one_line_and_exit_2_before_anything_starts(
    command: list[str], tmp_path: Path
) -> None:
    arguments = [*command, "--state-dir", str(tmp_path), "-c", "eventpipe.dev.nope=1"]
    done = subprocess.run(
        [sys.executable, "-m", "eventpipe.ops.main", *arguments], capture_output=True, text=True, check=False
    )

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "eventpipe.dev.nope: unknown key" in done.stderr
    assert not (tmp_path / "state.json").exists()  # nothing was started
