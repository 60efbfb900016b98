"""A function's configuration as the emulator's Lambda API stores it, and the reads of it.

Configuration is read from the Lambda API (Handler, Environment, Timeout, MemorySize and the event
invoke config), so UpdateFunctionConfiguration takes effect like on AWS. It is read on every
invocation, unless the caller passes `config_generation`, a counter that changes whenever a Lambda
configuration may have changed (the emulator's moto patches count Lambda API writes): then a read is
reused until the counter moves, which saves three API requests per async invocation.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError

LATEST = "$LATEST"
# Lambda's defaults for a function without an event invoke config.
AWS_DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
AWS_DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 21_600

_Config = TypeVar("_Config")


class FunctionNotFoundError(LookupError):
    """The function does not exist in the emulator (Lambda's ResourceNotFoundException)."""


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    arn: str
    handler: str
    runtime: str
    environment: Mapping[str, str]
    timeout: int
    memory_size: int

    @property
    def fingerprint(self) -> str:
        """Changes whenever a setting that shapes the execution environment changes."""
        material = json.dumps(
            [self.handler, self.runtime, dict(self.environment), self.timeout, self.memory_size],
            sort_keys=True,
        )
        return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class AsyncConfig:
    maximum_retry_attempts: int = AWS_DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age_seconds: int = AWS_DEFAULT_MAXIMUM_EVENT_AGE_SECONDS
    on_success: str | None = None
    on_failure: str | None = None


def function_name_of(name_or_arn: str) -> str:
    """Accept a name, a full or partial ARN, with or without a `$LATEST` qualifier."""
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:"):
        return parts[6]
    if len(parts) >= 3 and parts[1] == "function":  # partial ARN: 123456789012:function:name
        return parts[2]
    return parts[0]


class ConfigReader:
    """Reads FunctionConfig / AsyncConfig through a Lambda client, cached per `config_generation`."""

    def __init__(self, lambda_client: Any, config_generation: Callable[[], int] | None = None) -> None:
        self._lambda = lambda_client
        self._config_generation = config_generation
        self._cache: dict[tuple[str, str], tuple[int, Any]] = {}
        self._lock = threading.Lock()

    def function_config(self, name: str) -> FunctionConfig:
        """The function's configuration; raises FunctionNotFoundError."""
        config: FunctionConfig = self._cached("function", name, self._read_function_config)
        return config

    def async_config(self, name: str) -> AsyncConfig:
        """The function's event invoke config (Lambda's defaults when it has none)."""
        config: AsyncConfig = self._cached("async", name, self._read_async_config)
        return config

    def _cached(self, kind: str, name: str, read: Callable[[str], _Config]) -> _Config:
        if self._config_generation is None:
            return read(name)
        # Taken before the read: a change that lands during the read makes the next call read again.
        generation = self._config_generation()
        with self._lock:
            hit = self._cache.get((kind, name))
        if hit is not None and hit[0] == generation:
            cached: _Config = hit[1]
            return cached
        value = read(name)  # FunctionNotFoundError is not cached: the function may be created next
        with self._lock:
            self._cache[kind, name] = (generation, value)
        return value

    def _read_function_config(self, name: str) -> FunctionConfig:
        try:
            raw = self._lambda.get_function_configuration(FunctionName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                raise FunctionNotFoundError(f"Function not found: {name}") from exc
            raise
        return FunctionConfig(
            name=raw["FunctionName"],
            arn=raw["FunctionArn"].removesuffix(f":{LATEST}"),
            handler=raw["Handler"],
            runtime=raw.get("Runtime", "python3.14"),
            environment=raw.get("Environment", {}).get("Variables", {}),
            timeout=int(raw.get("Timeout", 3)),
            memory_size=int(raw.get("MemorySize", 128)),
        )

    def _read_async_config(self, name: str) -> AsyncConfig:
        try:
            raw = self._lambda.get_function_event_invoke_config(FunctionName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return AsyncConfig()  # no event invoke config: Lambda's defaults
            raise
        destinations = raw.get("DestinationConfig", {})
        return AsyncConfig(
            maximum_retry_attempts=int(raw.get("MaximumRetryAttempts", AWS_DEFAULT_MAXIMUM_RETRY_ATTEMPTS)),
            maximum_event_age_seconds=int(
                raw.get("MaximumEventAgeInSeconds", AWS_DEFAULT_MAXIMUM_EVENT_AGE_SECONDS)
            ),
            on_success=destinations.get("OnSuccess", {}).get("Destination") or None,
            on_failure=destinations.get("OnFailure", {}).get("Destination") or None,
        )
