"""The JSON Schema of S3 events as eventpipe consumes them via EventBridge, compiled once.

Local mode validates the events it emits and the tests validate the fixtures with the same schema,
so neither the emulator nor the fixtures can drift from AWS's shape unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from eventpipe.contract.paths import PROJECT_ROOT

# `schemas/` sits at the repository root (found from the package, never from the working directory).
S3_EVENT_SCHEMA_PATH = PROJECT_ROOT / "schemas" / "s3-eventbridge-event.schema.json"

S3EventValidator = Callable[[Mapping[str, Any]], Any]


class InvalidS3EventError(ValueError):
    """An event that does not have the shape S3 gives its EventBridge events."""


@cache
def load_s3_event_validator() -> S3EventValidator:
    """A function that returns the event if it is AWS-shaped and raises InvalidS3EventError if not.

    fastjsonschema comes with the `local` extra; it is imported here, not at module level, so the
    contract stays importable on the standard library alone (ImportError when it is missing)."""
    import fastjsonschema

    schema = json.loads(S3_EVENT_SCHEMA_PATH.read_text(encoding="utf-8"))
    compiled = fastjsonschema.compile(schema)

    def validate(event: Mapping[str, Any]) -> Any:
        try:
            return compiled(event)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise InvalidS3EventError(f"not an AWS-shaped S3 event: {exc.message}") from None

    return validate
