"""Typed stage configuration, read from CDK context and validated before anything is built.

Where values come from, later wins:
1. `DEFAULTS` below (every key; `STAGE_DEFAULTS` adjusts a few for `prod`),
2. the `eventpipe.<stage>` block of `cdk.json` context (only real per-stage overrides: a default is
   written here once, never repeated there),
3. flat context keys `eventpipe.<stage>.<key>` (e.g. `cdk synth -c eventpipe.dev.alarm_email=a@b.c`).
A bad value raises `ConfigError` with one line naming the key; `app.py` prints it and exits non-zero.
Every key is documented in `docs/configuration.md`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from eventpipe.contract.consumers import Consumer, LambdaTarget
from infra.registry import CONSUMERS

DEFAULT_STAGE = "dev"
STAGE_RE = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TOPIC_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# CloudWatch Logs only accepts these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653)
MIB = 1024 * 1024
# The largest range one range-worker invocation must ingest within Lambda's 15 minutes: 512 MiB of
# 100-byte lines is ~5.4 million records, ~9 minutes at the 10,000 records/s one pooled invocation is
# built for (issue 12); a larger threshold would risk ranges that time out on every attempt.
FANOUT_MAX_RANGE_BYTES = 512 * MIB


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line that names the key."""


DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "retain_data": False,
        "archive_retention_days": 30,
        "noncurrent_version_expiration_days": 30,
        "access_log_retention_days": 90,
        "log_retention_days": 30,
        "log_level": "INFO",
        "alarm_email": None,
        "alarm_topic_arn": None,
        "target_retry_attempts": 8,
        "target_max_event_age_seconds": 3600,
        "lambda_retry_attempts": 2,
        "lambda_max_event_age_seconds": 3600,
        "fanout_threshold_bytes": 64 * MIB,
        "writers": 16,
        "fanout_max_concurrency": 4,
        "fanout_memory_mb": 1769,
        "function_memory_mb": {},
    }
)

STAGE_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "prod": MappingProxyType(
            {
                "retain_data": True,
                "archive_retention_days": 365,
                "noncurrent_version_expiration_days": 90,
                "access_log_retention_days": 365,
                "log_retention_days": 365,
                "target_retry_attempts": 185,
                "target_max_event_age_seconds": 86400,
                "lambda_max_event_age_seconds": 21600,
            }
        )
    }
)


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    stage: str
    retain_data: bool
    archive_retention_days: int
    noncurrent_version_expiration_days: int
    access_log_retention_days: int
    log_retention_days: int
    log_level: str
    alarm_email: str | None
    alarm_topic_arn: str | None
    target_retry_attempts: int
    target_max_event_age_seconds: int
    lambda_retry_attempts: int
    lambda_max_event_age_seconds: int
    fanout_threshold_bytes: int
    writers: int
    fanout_max_concurrency: int
    fanout_memory_mb: int
    function_memory_mb: Mapping[str, int]

    @property
    def stack_name(self) -> str:
        return f"eventpipe-{self.stage}"

    def memory_mb(self, consumer: Consumer) -> int:
        """The stage's memory for a Lambda consumer: an override from config, else the entry's own."""
        assert isinstance(consumer.target, LambdaTarget)
        return self.function_memory_mb.get(consumer.name, consumer.target.memory_mb)


# --- validators: each returns the typed value or raises a message fragment -----------------------


class _Invalid(Exception):
    pass


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        number = _as_int(value)
        if number is None or not low <= number <= high:
            raise _Invalid(f"must be an integer between {low} and {high}")
        return number

    return check


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _Invalid("must be true or false")


def _one_of(choices: tuple[Any, ...]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        candidate = _as_int(value) if isinstance(choices[0], int) else value
        if candidate not in choices:
            raise _Invalid(f"must be one of {', '.join(str(c) for c in choices)}")
        return candidate

    return check


def _optional_email(value: Any) -> str | None:
    if value in (None, "", "null"):
        return None
    if not isinstance(value, str) or not EMAIL_RE.match(value):
        raise _Invalid("must be an email address or null")
    return value


def _optional_topic_arn(value: Any) -> str | None:
    if value in (None, "", "null"):
        return None
    if not isinstance(value, str) or not TOPIC_ARN_RE.match(value):
        raise _Invalid("must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME) or null")
    return value


def _memory_overrides(value: Any) -> Mapping[str, int]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _Invalid("must be a JSON object of Lambda consumer name -> MB") from None
    if not isinstance(value, Mapping):
        raise _Invalid("must be an object of Lambda consumer name -> MB")
    lambda_names = {c.name for c in CONSUMERS if isinstance(c.target, LambdaTarget)}
    checked: dict[str, int] = {}
    for name, mb in value.items():
        if name not in lambda_names:
            raise _Invalid(f"{name!r} is not a Lambda consumer (known: {', '.join(sorted(lambda_names))})")
        number = _as_int(mb)
        if number is None or not 128 <= number <= 10240:
            raise _Invalid(f"{name!r} must be an integer between 128 and 10240")
        checked[name] = number
    return MappingProxyType(checked)


VALIDATORS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "retain_data": _boolean,
        "archive_retention_days": _integer(1, 3650),
        "noncurrent_version_expiration_days": _integer(1, 3650),
        "access_log_retention_days": _integer(1, 3650),
        "log_retention_days": _one_of(LOG_RETENTION_DAYS),
        "log_level": _one_of(LOG_LEVELS),
        "alarm_email": _optional_email,
        "alarm_topic_arn": _optional_topic_arn,
        # EventBridge RetryPolicy limits.
        "target_retry_attempts": _integer(0, 185),
        "target_max_event_age_seconds": _integer(60, 86400),
        # Lambda EventInvokeConfig limits.
        "lambda_retry_attempts": _integer(0, 2),
        "lambda_max_event_age_seconds": _integer(60, 21600),
        # One range of a fanned-out object is ingested by one range-worker invocation (15 minutes at most):
        # FANOUT_MAX_RANGE_BYTES bounds what must fit in it; below 1 MiB a fan-out costs more than it saves.
        "fanout_threshold_bytes": _integer(MIB, FANOUT_MAX_RANGE_BYTES),
        # BatchWriteItem requests one function keeps in flight (docs/configuration.md).
        "writers": _integer(1, 64),
        # AWS::Lambda::EventSourceMapping ScalingConfig.MaximumConcurrency: minimum 2, maximum 1000
        # (CloudFormation template reference, "AWS::Lambda::EventSourceMapping ScalingConfig").
        "fanout_max_concurrency": _integer(2, 1000),
        # The range worker's memory. Its pool of writers keeps it busy on the CPU (`make bench`, scale), and
        # "Lambda allocates CPU power in proportion to the amount of memory configured. [...] At 1,769 MB,
        # a function has the equivalent of one vCPU" (Lambda developer guide, "Configure Lambda function
        # memory"): below that a range runs slower in proportion, for about the same GB-s. 128-10240 MB.
        "fanout_memory_mb": _integer(128, 10240),
        "function_memory_mb": _memory_overrides,
    }
)


def load_config(get_context: Callable[[str], Any]) -> StageConfig:
    """Build the stage configuration from a context getter (`node.try_get_context` or `dict.get`)."""
    stage = get_context("stage") or DEFAULT_STAGE
    if not isinstance(stage, str) or not STAGE_RE.match(stage):
        raise ConfigError(f"stage: must be lowercase letters, digits and '-' (max 21), got {stage!r}")
    prefix = f"eventpipe.{stage}"

    block = _stage_block(get_context("eventpipe"), stage, prefix)
    unknown = sorted(set(block) - set(VALIDATORS))
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key (known: {', '.join(VALIDATORS)})")

    values: dict[str, Any] = {**DEFAULTS, **STAGE_DEFAULTS.get(stage, {}), **block}
    typed: dict[str, Any] = {}
    for key, check in VALIDATORS.items():
        flat = get_context(f"{prefix}.{key}")
        raw = flat if flat is not None else values[key]
        try:
            typed[key] = check(raw)
        except _Invalid as exc:
            raise ConfigError(f"{prefix}.{key}: {exc}, got {raw!r}") from None
    config = StageConfig(stage=stage, **typed)
    _check_alarm_recipient(config, prefix)
    return config


def _check_alarm_recipient(config: StageConfig, prefix: str) -> None:
    """A stage that retains data must tell someone when it fails: alarms to a topic nobody reads would
    let dead letters expire unseen. Exactly one recipient: our topic with an email, or an existing topic."""
    if config.alarm_email and config.alarm_topic_arn:
        raise ConfigError(
            f"{prefix}.alarm_topic_arn: set alarm_email or alarm_topic_arn, not both "
            "(an existing topic has its own subscriptions)"
        )
    if config.retain_data and not (config.alarm_email or config.alarm_topic_arn):
        raise ConfigError(
            f"{prefix}.alarm_email: stage {config.stage!r} retains data, so its alarms need a recipient: "
            f"set {prefix}.alarm_email (e.g. -c {prefix}.alarm_email=oncall@example.com) "
            f"or {prefix}.alarm_topic_arn (an existing SNS topic)"
        )


def _stage_block(tree: Any, stage: str, prefix: str) -> Mapping[str, Any]:
    if tree is None:
        return {}
    if isinstance(tree, str):  # context given on the command line arrives as a string
        try:
            tree = json.loads(tree)
        except json.JSONDecodeError:
            raise ConfigError(f"eventpipe: must be a JSON object, got {tree!r}") from None
    if not isinstance(tree, Mapping):
        raise ConfigError(f"eventpipe: must be an object of stage -> settings, got {tree!r}")
    block = tree.get(stage) or {}
    if not isinstance(block, Mapping):
        raise ConfigError(f"{prefix}: must be an object of settings, got {block!r}")
    return block
