"""Stage configuration: defaults, cdk.json, command-line overrides, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from stack_fixtures import CDK_CONTEXT, REPO_ROOT

from infra.config import DEFAULTS, STAGE_DEFAULTS, ConfigError, StageConfig, load_config


def config_from(context: dict[str, Any]):
    return load_config(context.get)


def test_stage_defaults_to_dev_and_names_the_stack() -> None:
    config = config_from({})

    assert config.stage == "dev"
    assert config.stack_name == "eventpipe-dev"
    assert config.retain_data is False


def test_prod_defaults_retain_data_and_retry_for_a_day() -> None:
    config = config_from({"stage": "prod", "eventpipe.prod.alarm_email": "oncall@example.com"})

    assert config.stack_name == "eventpipe-prod"
    assert config.retain_data is True
    assert config.target_retry_attempts == 185
    assert config.target_max_event_age_seconds == 86400


def test_cdk_json_keeps_only_real_per_stage_overrides() -> None:
    """Defaults live once, in infra/config.py: a cdk.json value equal to its default is a second copy."""
    for stage, block in CDK_CONTEXT["eventpipe"].items():
        defaults = {**DEFAULTS, **STAGE_DEFAULTS.get(stage, {})}

        assert set(block) <= set(DEFAULTS), stage
        assert [key for key, value in block.items() if defaults[key] == value] == [], stage


def test_cdk_json_block_overrides_defaults() -> None:
    config = config_from(
        {"eventpipe": {"dev": {"archive_retention_days": 7, "retain_data": True, "alarm_email": "a@b.co"}}}
    )

    assert config.archive_retention_days == 7
    assert config.retain_data is True


def test_flat_command_line_context_wins_over_the_block_and_is_parsed() -> None:
    # `cdk synth -c eventpipe.dev.archive_retention_days=9` delivers strings.
    config = config_from(
        {
            "eventpipe": {"dev": {"archive_retention_days": 7}},
            "eventpipe.dev.archive_retention_days": "9",
            "eventpipe.dev.retain_data": "true",
            "eventpipe.dev.alarm_topic_arn": "arn:aws:sns:eu-west-1:111122223333:oncall",
            "eventpipe.dev.function_memory_mb": '{"ingest": 2048}',
        }
    )

    assert config.archive_retention_days == 9
    assert config.retain_data is True
    assert config.function_memory_mb == {"ingest": 2048}


def test_fanout_settings_default_and_take_the_command_line_form_of_the_issue() -> None:
    defaults = config_from({})
    # `eventpipe local start -c eventpipe.dev.fanout_threshold_bytes=1048576` (issue 12) delivers a string.
    small = config_from(
        {
            "eventpipe.dev.fanout_threshold_bytes": "1048576",
            "eventpipe.dev.writers": "1",
            "eventpipe.dev.fanout_max_concurrency": "1000",
            "eventpipe.dev.fanout_memory_mb": "512",
        }
    )

    def fanout(config: StageConfig) -> tuple[int, ...]:
        return (
            config.fanout_threshold_bytes,
            config.writers,
            config.fanout_max_concurrency,
            config.fanout_memory_mb,
        )

    assert fanout(defaults) == (64 * 1024 * 1024, 16, 4, 1769)
    assert fanout(small) == (1048576, 1, 1000, 512)


def test_unknown_stage_uses_the_common_defaults() -> None:
    config = config_from({"stage": "feature-x"})

    assert config.stack_name == "eventpipe-feature-x"
    assert config.archive_retention_days == DEFAULTS["archive_retention_days"]


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("archive_retention_days", "x", "must be an integer between 1 and 3650, got 'x'"),
        ("archive_retention_days", 0, "must be an integer between 1 and 3650, got 0"),
        ("target_retry_attempts", 186, "must be an integer between 0 and 185, got 186"),
        ("target_max_event_age_seconds", 59, "must be an integer between 60 and 86400, got 59"),
        ("lambda_retry_attempts", 3, "must be an integer between 0 and 2, got 3"),
        ("retain_data", "yes", "must be true or false, got 'yes'"),
        ("alarm_email", "not-an-email", "must be an email address or null, got 'not-an-email'"),
        ("log_retention_days", 10, "must be one of 1, 3, 5, 7, 14, 30"),
        ("log_level", "LOUD", "must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"),
        ("function_memory_mb", {"audit": 512}, "'audit' is not a Lambda consumer"),
        ("function_memory_mb", {"ingest": 64}, "'ingest' must be an integer between 128 and 10240"),
        ("fanout_threshold_bytes", 1024 * 1024 - 1, "must be an integer between 1048576 and 536870912"),
        ("fanout_threshold_bytes", 512 * 1024 * 1024 + 1, "must be an integer between 1048576 and 536870912"),
        ("writers", 0, "must be an integer between 1 and 64, got 0"),
        ("writers", 65, "must be an integer between 1 and 64, got 65"),
        # The SQS event source's MaximumConcurrency accepts 2..1000 (CloudFormation ScalingConfig).
        ("fanout_max_concurrency", 1, "must be an integer between 2 and 1000, got 1"),
        ("fanout_max_concurrency", 1001, "must be an integer between 2 and 1000, got 1001"),
        ("fanout_memory_mb", 127, "must be an integer between 128 and 10240, got 127"),
        ("fanout_memory_mb", 10241, "must be an integer between 128 and 10240, got 10241"),
        ("archive_retention_dayz", 5, "unknown key"),
    ],
)
def test_invalid_value_names_the_key_in_one_line(key: str, value: Any, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from({"eventpipe": {"dev": {key: value}}})

    message = str(raised.value)
    assert message.startswith(f"eventpipe.dev.{key}: {reason}")
    assert "\n" not in message


def test_invalid_stage_name_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^stage: must be lowercase"):
        config_from({"stage": "Prod!"})


def test_app_prints_one_line_and_exits_non_zero_on_bad_config() -> None:
    context = {**CDK_CONTEXT, "eventpipe.dev.archive_retention_days": "x"}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": "/nonexistent-never-written"}

    done = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "eventpipe configuration error: eventpipe.dev.archive_retention_days: "
        "must be an integer between 1 and 3650, got 'x'"
    )
    assert "Traceback" not in done.stdout + done.stderr


def test_synth_of_a_data_retaining_stage_without_an_alarm_recipient_fails_in_one_line() -> None:
    context = {**CDK_CONTEXT, "stage": "prod"}  # cdk.json ships prod without a recipient
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": "/nonexistent-never-written"}

    done = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )

    assert done.returncode == 1
    assert done.stderr.strip() == (
        "eventpipe configuration error: eventpipe.prod.alarm_email: stage 'prod' retains data, so its "
        "alarms need a recipient: set eventpipe.prod.alarm_email "
        "(e.g. -c eventpipe.prod.alarm_email=oncall@example.com) or eventpipe.prod.alarm_topic_arn "
        "(an existing SNS topic)"
    )
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "recipient",
    [
        {"eventpipe.prod.alarm_email": "oncall@example.com"},
        {"eventpipe.prod.alarm_topic_arn": "arn:aws:sns:eu-west-1:111122223333:oncall"},
    ],
)
def test_either_recipient_satisfies_a_data_retaining_stage(recipient: dict[str, str]) -> None:
    config = config_from({"stage": "prod", **recipient})

    assert config.retain_data is True
    assert (config.alarm_email or config.alarm_topic_arn) in recipient.values()


def test_a_stage_that_does_not_retain_data_may_have_no_recipient() -> None:
    config = config_from({"stage": "dev"})

    assert config.retain_data is False
    assert config.alarm_email is None
    assert config.alarm_topic_arn is None


def test_email_and_existing_topic_together_are_refused_in_one_line() -> None:
    both = {"alarm_email": "oncall@example.com", "alarm_topic_arn": "arn:aws:sns:eu-west-1:111122223333:x"}

    with pytest.raises(ConfigError) as raised:
        config_from({"eventpipe": {"dev": both}})

    assert str(raised.value).startswith("eventpipe.dev.alarm_topic_arn: set alarm_email or alarm_topic_arn")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "arn", ["topic-name", "arn:aws:sqs:eu-west-1:111122223333:queue", "arn:aws:sns:eu-west-1:1234:x"]
)
def test_alarm_topic_arn_must_be_an_sns_topic_arn(arn: str) -> None:
    with pytest.raises(ConfigError, match=r"^eventpipe\.dev\.alarm_topic_arn: must be an SNS topic ARN"):
        config_from({"eventpipe": {"dev": {"alarm_topic_arn": arn}}})
