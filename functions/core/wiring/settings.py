"""Typed settings of the Lambda functions, read from the environment once per execution environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from functions.core.adapters.dynamodb_batch_writer import DEFAULT_WRITERS
from functions.core.wiring import env as names

DEFAULT_MAX_JSON_ARRAY_BYTES = 32 * 1024 * 1024  # the stack always sets it; as infra/config.py DEFAULTS
DEFAULT_FANOUT_THRESHOLD_BYTES = 64 * 1024 * 1024  # the stack always sets it; as infra/config.py DEFAULTS


class SettingsError(ValueError):
    """A missing or malformed environment variable; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    rejects_bucket: str
    max_json_array_bytes: int = DEFAULT_MAX_JSON_ARRAY_BYTES
    # A lease must outlive one invocation (5-minute timeout) so a crashed holder never blocks for long
    # and a live holder is never overtaken; `lambda_services.services_for` extends it for longer timeouts.
    lease_seconds: int = 330
    fanout_queue_url: str | None = None
    fanout_threshold_bytes: int = DEFAULT_FANOUT_THRESHOLD_BYTES
    # BatchWriteItem requests in flight per writer (1 = one at a time); the stack sets it per stage.
    writers: int = DEFAULT_WRITERS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"environment variable {name} is required")
            return value

        raw_limit = env.get(names.MAX_JSON_ARRAY_BYTES, "").strip()
        try:
            limit = int(raw_limit) if raw_limit else DEFAULT_MAX_JSON_ARRAY_BYTES
        except ValueError:
            raise SettingsError(
                f"{names.MAX_JSON_ARRAY_BYTES} must be an integer, got {raw_limit!r}"
            ) from None
        if limit <= 0:
            raise SettingsError(f"{names.MAX_JSON_ARRAY_BYTES} must be positive, got {limit}")
        threshold = _positive(env, names.FANOUT_THRESHOLD_BYTES, DEFAULT_FANOUT_THRESHOLD_BYTES)
        raw_writers = env.get(names.WRITERS, "").strip()
        try:
            writers = int(raw_writers) if raw_writers else DEFAULT_WRITERS
        except ValueError:
            raise SettingsError(f"{names.WRITERS} must be an integer, got {raw_writers!r}") from None
        if writers < 1:
            raise SettingsError(f"{names.WRITERS} must be at least 1, got {writers}")
        return cls(
            fanout_queue_url=env.get(names.FANOUT_QUEUE_URL, "").strip() or None,
            fanout_threshold_bytes=threshold,
            table_name=required(names.TABLE_NAME),
            rejects_bucket=required(names.REJECTS_BUCKET),
            max_json_array_bytes=limit,
            writers=writers,
        )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


@cache
def get_settings() -> Settings:
    """The settings of this execution environment (read on first use, not at import)."""
    return Settings.from_env(os.environ)
