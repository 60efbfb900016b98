"""`eventpipe consumers new`: everything a new consumer needs, written in the project's style.

The registry entry is one new data file, `consumers/<name>.json`, in the format the registry
(`eventpipe.contract.consumers`) loads and validates; the CDK construct then adds the rule, DLQ, retry
policy, alarms and outputs. A Lambda consumer also gets `functions/<name_with_underscores>/handler.py`
(thin handler), `functions/core/use_cases/<name_with_underscores>.py` (its domain function) and a unit
test, modelled on the ingest consumer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventpipe.contract.consumers import (
    REGISTRY_DIR,
    TARGET_CLASSES,
    RegistryError,
    consumer_from_entry,
    name_clash,
    registry_file,
    registry_names,
)
from eventpipe.contract.errors import UsageError
from eventpipe.contract.paths import PROJECT_ROOT
from eventpipe.contract.patterns import InvalidPatternError, validate_pattern
from eventpipe.ops.cli_support import read_json_file

# Where the registry's files are, relative to the project root.
REGISTRY_FOLDER = REGISTRY_DIR.relative_to(PROJECT_ROOT)
DEFAULT_EVENTS = {"type": "created"}


@dataclass(frozen=True)
class Scaffolded:
    name: str
    target: str
    files: tuple[Path, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "files": [str(path) for path in self.files]}


def module_name(name: str) -> str:
    return name.replace("-", "_")


def validate_name(name: str, existing: list[str], root: Path) -> None:
    problem = name_clash(name, existing)
    if problem:
        raise UsageError(f"{problem} (registry: {REGISTRY_FOLDER}/)")
    if (root / "functions" / module_name(name)).exists():
        raise UsageError(f"functions/{module_name(name)}/ already exists; pick another name or remove it")


def read_pattern_file(path: Path) -> dict[str, Any]:
    pattern = read_json_file(path, "pattern file")
    if not isinstance(pattern, dict) or not pattern:
        raise UsageError(f"pattern file {path} must hold a non-empty JSON object (an EventBridge pattern)")
    if "source" in pattern:
        raise UsageError(
            f"pattern file {path} sets 'source': leave it out, the stack adds aws.s3 and the bucket itself"
        )
    try:
        validate_pattern(pattern)  # refuse now what PutRule would refuse at deploy time
    except InvalidPatternError as exc:
        raise UsageError(f"pattern file {path}: {exc}") from None
    return pattern


def registry_entry(target: str, pattern: dict[str, Any] | None) -> dict[str, Any]:
    """The new consumer's entry: every Object Created event (or the given pattern) to a default target."""
    return {
        "description": "TODO: say what this consumer does with the events it receives.",
        **({"events": DEFAULT_EVENTS} if pattern is None else {"pattern": pattern}),
        "target": {"kind": target},
    }


def scaffold(
    name: str, target: str, *, pattern: dict[str, Any] | None, root: Path | None = None
) -> Scaffolded:
    """Write the entry (and for Lambda the function and its test); nothing is written if a check fails."""
    root = root or PROJECT_ROOT
    if target not in TARGET_CLASSES:
        raise UsageError(f"unknown target {target!r} (choose from {', '.join(TARGET_CLASSES)})")
    registry = root / REGISTRY_FOLDER
    validate_name(name, registry_names(registry), root)
    entry = registry_entry(target, pattern)
    try:  # the registry's own loader must accept it (no suffixes needed: the entry names none)
        consumer_from_entry(name, entry, readable_suffixes=())
    except (RegistryError, ValueError, TypeError) as exc:
        raise UsageError(f"the new entry would not load: {exc}") from None
    planned: dict[Path, str] = {registry_file(name, registry): json.dumps(entry, indent=2) + "\n"}
    if target == "lambda":
        module = module_name(name)
        planned[root / "functions" / module / "__init__.py"] = ""
        planned[root / "functions" / module / "handler.py"] = HANDLER_TEMPLATE.format(
            name=name, module=module
        )
        planned[root / "functions" / "core" / "use_cases" / f"{module}.py"] = DOMAIN_TEMPLATE.format(
            name=name, module=module
        )
        planned[root / "tests" / "unit" / "functions" / f"test_{module}_handler.py"] = TEST_TEMPLATE.format(
            name=name, module=module
        )
    clashes = [path for path in planned if path.exists()]
    if clashes:
        raise UsageError(f"{clashes[0].relative_to(root)} already exists; remove it or pick another name")
    for path, text in planned.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Scaffolded(name, target, tuple(path.relative_to(root) for path in planned))


HANDLER_TEMPLATE = '''\
"""Lambda entry point of the `{name}` consumer (S3 object events via EventBridge)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from functions.core.domain.events import InvalidEventError, ObjectEvent
from functions.core.use_cases.{module} import handle_{module}
from functions.core.wiring.observability import logger, metrics, traced_handler


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
@traced_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        object_event = ObjectEvent.from_eventbridge(event)
    except InvalidEventError as invalid:
        # Retrying cannot fix a malformed event: log it and finish (no poison loop).
        logger.error("ignored event", extra={{"reason": str(invalid)}})
        return {{"status": "invalid", "detail": str(invalid)}}
    outcome = asdict(handle_{module}(object_event))
    logger.info("handled", extra=outcome)
    return outcome
'''

DOMAIN_TEMPLATE = '''\
"""What the `{name}` consumer does with one S3 object event.

Events arrive at least once and out of order, and again when replayed or redriven: keep this
idempotent. Raise only for transient failures (Lambda retries them, then the failure queue keeps
the event for `eventpipe dlq redrive`); deterministic problems must return an outcome instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.core.domain.events import ObjectEvent


@dataclass(frozen=True)
class Outcome:
    status: str
    owner: str
    replayed: bool


def handle_{module}(event: ObjectEvent) -> Outcome:
    """TODO: the consumer's work. `event.key` is already URL-decoded."""
    return Outcome("handled", event.owner, replayed=event.replay_name is not None)
'''

TEST_TEMPLATE = '''\
"""The `{name}` consumer's handler on a real-shaped S3 EventBridge event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.{module}.handler import lambda_handler

EVENT: dict[str, Any] = {{
    "version": "0",
    "id": "5b1e1c1a-2f4e-4b7e-9c1e-0a6f1d3e9b21",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:s3:::example-bucket"],
    "detail": {{
        "version": "0",
        "bucket": {{"name": "example-bucket"}},
        "object": {{"key": "incoming/my+file.json", "size": 10, "etag": "abc", "sequencer": "00A1"}},
        "request-id": "R1",
        "requester": "123456789012",
        "source-ip-address": "203.0.113.1",
        "reason": "PutObject",
    }},
}}


@dataclass
class FakeLambdaContext:
    function_name: str = "{name}"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:{name}"
    aws_request_id: str = "req-1"


def test_handles_the_object_with_its_decoded_key() -> None:
    result = lambda_handler(EVENT, FakeLambdaContext())

    assert result["status"] == "handled"
    assert result["owner"] == "example-bucket/incoming/my file.json"
    assert result["replayed"] is False


def test_replayed_events_are_handled_and_flagged() -> None:
    result = lambda_handler({{**EVENT, "replay-name": "eventpipe-{name}-1"}}, FakeLambdaContext())

    assert result["replayed"] is True


def test_a_malformed_event_is_reported_not_raised() -> None:
    result = lambda_handler({{"id": "x", "detail-type": "Object Created"}}, FakeLambdaContext())

    assert result["status"] == "invalid"
'''
