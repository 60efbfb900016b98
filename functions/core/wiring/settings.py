"""Typed settings of the Lambda functions, read from the environment once per execution environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from functions.core.wiring import env as names


class SettingsError(ValueError):
    """A missing or malformed environment variable; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    rejects_bucket: str
    # A lease must outlive one invocation (5-minute timeout) so a crashed holder never blocks for long
    # and a live holder is never overtaken; `lambda_services.services_for` extends it for longer timeouts.
    lease_seconds: int = 330

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"environment variable {name} is required")
            return value

        return cls(
            table_name=required(names.TABLE_NAME),
            rejects_bucket=required(names.REJECTS_BUCKET),
        )


@cache
def get_settings() -> Settings:
    """The settings of this execution environment (read on first use, not at import)."""
    return Settings.from_env(os.environ)
