"""The consumer registry: every consumer of the project bus is one declarative entry.

A `Consumer` names an event pattern and a target; the CDK construct (`infra/constructs/consumer.py`)
turns each entry into a rule with a dead-letter queue, retry policy, alarms and outputs, so adding a
consumer is adding one data file, `consumers/<name>.json` (`eventpipe consumers new` writes it; see
`REGISTRY_DIR` for the fields). This module is standard library only: the CDK app, the operator CLI
(`eventpipe consumers`, `eventpipe pattern test`) and local mode all load the registry with it.

Patterns are plain EventBridge pattern dicts restricted to what the consumer cares about; the construct
adds `source: ["aws.s3"]` and the ingest bucket's name (see `full_pattern`).

Key prefixes and suffixes are matched by EventBridge against the key as S3 publishes it, URL-encoded
form-style (space -> `+`, `=` -> `%3D`, non-ASCII -> `%XX`): write a prefix with such characters in
that encoded form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from eventpipe.contract.outputs import pascal_case
from eventpipe.contract.paths import PROJECT_ROOT

Pattern = dict[str, Any]

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
"""Consumer names: lowercase words joined by `-` (they become rule ids, PascalCase outputs, folders)."""

MAX_NAME_LENGTH = 40

S3_SOURCE = "aws.s3"

# --- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LambdaTarget:
    """A function of this project, code in `functions/<name with - as _>/handler.py`.

    The permission flags are the whole IAM surface of the function: each maps to a fixed,
    wildcard-free set of actions on one project resource:
    `reads_ingest_bucket` s3:GetObject, s3:GetObjectVersion, s3:ListBucket;
    `reads_table` dynamodb:GetItem, BatchGetItem, Query, ConditionCheckItem (table + `by-owner` index);
    `writes_table` dynamodb:PutItem, UpdateItem, DeleteItem, BatchWriteItem;
    `writes_rejects` s3:PutObject, s3:DeleteObject on the rejects bucket;
    `starts_fanout` sqs:SendMessage on the range work queue (the function splits large objects into
    range tasks; the stack then builds the range worker, see docs/architecture.md).
    """

    kind: Literal["lambda"] = field(default="lambda", init=False)
    memory_mb: int = 512
    timeout_seconds: int = 300
    reads_ingest_bucket: bool = False
    reads_table: bool = False
    writes_table: bool = False
    writes_rejects: bool = False
    starts_fanout: bool = False

    def __post_init__(self) -> None:
        if not 128 <= self.memory_mb <= 10240:
            raise ValueError(f"LambdaTarget.memory_mb must be 128..10240, got {self.memory_mb}")
        if not 1 <= self.timeout_seconds <= 900:
            raise ValueError(f"LambdaTarget.timeout_seconds must be 1..900, got {self.timeout_seconds}")


@dataclass(frozen=True, kw_only=True)
class QueueTarget:
    """An encrypted, TLS-only SQS queue owned by the consumer (events are delivered as-is)."""

    kind: Literal["sqs"] = field(default="sqs", init=False)
    retention_days: int = 14

    def __post_init__(self) -> None:
        if not 1 <= self.retention_days <= 14:  # the SQS limits
            raise ValueError(f"QueueTarget.retention_days must be 1..14, got {self.retention_days}")


@dataclass(frozen=True, kw_only=True)
class TopicTarget:
    """An encrypted, TLS-only SNS topic owned by the consumer; subscriptions are added by operators."""

    kind: Literal["sns"] = field(default="sns", init=False)


PASS_THROUGH_DEFINITION: Mapping[str, Any] = {
    "Comment": "Receives the event; replace with the workflow this consumer runs.",
    "StartAt": "Received",
    "States": {"Received": {"Type": "Pass", "End": True}},
}


@dataclass(frozen=True, kw_only=True)
class StateMachineTarget:
    """A Step Functions state machine owned by the consumer, started once per matching event."""

    kind: Literal["sfn"] = field(default="sfn", init=False)
    definition: Mapping[str, Any] = field(default_factory=lambda: dict(PASS_THROUGH_DEFINITION))


@dataclass(frozen=True, kw_only=True)
class EventBusTarget:
    """Another event bus (e.g. in another account), given by ARN; `None` creates a bus for the consumer."""

    kind: Literal["bus"] = field(default="bus", init=False)
    bus_arn: str | None = None


Target = LambdaTarget | QueueTarget | TopicTarget | StateMachineTarget | EventBusTarget
TARGET_KINDS: tuple[str, ...] = ("lambda", "sqs", "sns", "sfn", "bus")


# EventBridge's limits for a target's RetryPolicy, by API field: (minimum, maximum). EventBridge API
# Reference, "RetryPolicy" (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_RetryPolicy.html).
RETRY_POLICY_LIMITS: Mapping[str, tuple[int, int]] = {
    "MaximumRetryAttempts": (0, 185),
    "MaximumEventAgeInSeconds": (60, 86_400),
}


@dataclass(frozen=True, kw_only=True)
class RetryOverride:
    """Per-consumer override of the stage's target retry policy (EventBridge -> target)."""

    max_retry_attempts: int | None = None
    max_event_age_seconds: int | None = None

    def __post_init__(self) -> None:  # the EventBridge RetryPolicy limits
        low, high = RETRY_POLICY_LIMITS["MaximumRetryAttempts"]
        if self.max_retry_attempts is not None and not low <= self.max_retry_attempts <= high:
            raise ValueError(f"max_retry_attempts must be {low}..{high}, got {self.max_retry_attempts}")
        low, high = RETRY_POLICY_LIMITS["MaximumEventAgeInSeconds"]
        if self.max_event_age_seconds is not None and not low <= self.max_event_age_seconds <= high:
            raise ValueError(f"max_event_age_seconds must be {low}..{high}, got {self.max_event_age_seconds}")


# --- consumers ------------------------------------------------------------------------------------


RESERVED_NAMES: Mapping[str, str] = {
    "forwarder": "the default-bus forwarding rule uses its outputs and its name in the CLI",
    "range-worker": "the fan-out's range worker uses its outputs and its name in the CLI",
}
"""Names a consumer cannot take, with the reason."""


def valid_name(name: str) -> bool:
    """The consumer-name rule: lowercase letters and digits joined by '-', starting with a letter."""
    return bool(NAME_RE.match(name)) and len(name) <= MAX_NAME_LENGTH


def invalid_name_message(name: str) -> str:
    return (
        f"invalid consumer name {name!r}: lowercase letters and digits joined by '-', "
        f"starting with a letter, at most {MAX_NAME_LENGTH} characters (e.g. thumbnails, search-index)"
    )


def name_clash(name: str, existing: Sequence[str]) -> str | None:
    """Why a consumer cannot be called `name` next to `existing` ones, or None: an invalid or reserved
    name, a taken one, or one that differs from another only by its dashes."""
    if not valid_name(name):
        return invalid_name_message(name)
    if name in RESERVED_NAMES:
        return f"consumer name {name!r} is reserved: {RESERVED_NAMES[name]}"
    if name in existing:
        return f"consumer {name!r} already exists"
    # `searchindex` next to `search-index`: too alike to tell apart in outputs (`SearchIndex...`,
    # `Searchindex...`), construct ids and function folders.
    same = [known for known in existing if known.replace("-", "") == name.replace("-", "")]
    return f"consumer name {name!r} collides with existing {same[0]!r}" if same else None


@dataclass(frozen=True)
class Consumer:
    name: str
    pattern: Pattern
    target: Target
    description: str = ""
    ignore_replays: bool = False
    retry: RetryOverride | None = None

    def __post_init__(self) -> None:
        if not valid_name(self.name):
            raise ValueError(invalid_name_message(self.name))
        if "source" in self.pattern:
            raise ValueError(f"consumer {self.name!r}: the pattern must not set 'source' (added per stack)")

    @property
    def pascal_name(self) -> str:
        """`delete-sync` -> `DeleteSync`: the prefix of this consumer's stack outputs and construct ids."""
        return pascal_case(self.name)

    @property
    def function_dir(self) -> str:
        """Folder of a Lambda consumer's code, relative to the repository root."""
        return f"functions/{self.name.replace('-', '_')}"

    @property
    def handler(self) -> str:
        """Lambda handler string inside the shared code asset."""
        return f"functions.{self.name.replace('-', '_')}.handler.lambda_handler"

    def full_pattern(self, bucket_name: Any) -> Pattern:
        """The rule's complete pattern: the consumer's pattern scoped to S3 events of `bucket_name`.

        `bucket_name` may be a CDK token (the stack) or a literal (CLI, local mode).
        """
        return scoped_pattern(self.pattern, bucket_name, ignore_replays=self.ignore_replays)


def scoped_pattern(pattern: Mapping[str, Any], bucket_name: Any, *, ignore_replays: bool = False) -> Pattern:
    """Add the S3 source and bucket filter to a consumer pattern (without mutating it)."""
    detail = dict(pattern.get("detail", {}))
    bucket = dict(detail.get("bucket", {}))
    bucket["name"] = [bucket_name]
    detail["bucket"] = bucket
    scoped: Pattern = {"source": [S3_SOURCE], **dict(pattern), "detail": detail}
    if ignore_replays:
        # Replayed events carry a top-level `replay-name`; this makes the rule skip them.
        scoped["replay-name"] = [{"exists": False}]
    return scoped


# --- pattern helpers ------------------------------------------------------------------------------


def _key_filter(prefix: str | None, suffixes: Sequence[str]) -> list[dict[str, str]]:
    if prefix and suffixes:
        # EventBridge cannot AND a prefix and a suffix on one field: a wildcard does both.
        return [{"wildcard": f"{_escape_wildcard(prefix)}*{_escape_wildcard(s)}"} for s in suffixes]
    if suffixes:
        return [{"suffix": s} for s in suffixes]
    if prefix:
        return [{"prefix": prefix}]
    return []


def _escape_wildcard(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


def _object_pattern(detail_types: Sequence[str], prefix: str | None, suffixes: Sequence[str]) -> Pattern:
    pattern: Pattern = {"detail-type": list(detail_types)}
    key_filter = _key_filter(prefix, suffixes)
    if key_filter:
        pattern["detail"] = {"object": {"key": key_filter}}
    return pattern


def object_created(prefix: str | None = None, suffixes: Sequence[str] = ()) -> Pattern:
    """Object Created events, optionally only for keys under `prefix` and/or ending in one of `suffixes`."""
    return _object_pattern(("Object Created",), prefix, suffixes)


def object_deleted(prefix: str | None = None, suffixes: Sequence[str] = ()) -> Pattern:
    """Object Deleted events (DeleteObject, delete markers and lifecycle expiration), optionally only for
    keys under `prefix` and/or ending in one of `suffixes`."""
    return _object_pattern(("Object Deleted",), prefix, suffixes)


def any_object_event(prefix: str | None = None) -> Pattern:
    """Every S3 event of the bucket (any detail type, including ones S3 adds later)."""
    key_filter = _key_filter(prefix, ())
    return {"detail": {"object": {"key": key_filter}}} if key_filter else {}


# --- the registry -------------------------------------------------------------------------------

REGISTRY_DIR = PROJECT_ROOT / "consumers"
"""The registry's data: one JSON file per consumer, `consumers/<name>.json` (the file name is its name).

An entry holds `description`, either `events` (`{"type": "created" | "deleted" | "any", "prefix": ...,
"suffixes": [...] | "readable"}`, built with the helpers above) or a raw EventBridge `pattern`,
a `target` (`{"kind": "lambda" | "sqs" | "sns" | "sfn" | "bus", <that target's fields>}` or
`{"preset": "ingest-write-path" | "ingest-fan-out"}`), and optionally `ignore_replays`, `retry` and
free-text `notes`."""

READABLE = "readable"
"""`"suffixes": "readable"`: the key suffixes the ingest reader reads. The contract imports nothing of
`functions`, so whoever loads the registry passes them in (`functions/core/domain/formats.py`'s
`READABLE_SUFFIXES`, which infra and the operator CLI do)."""

INGEST_WRITE_PATH = LambdaTarget(
    memory_mb=512,
    reads_ingest_bucket=True,
    reads_table=True,
    writes_table=True,
    writes_rejects=True,
)
"""What running ingest's write path takes: read uploads, read/write the table, write rejects reports."""

INGEST_FAN_OUT = replace(INGEST_WRITE_PATH, starts_fanout=True)
"""Ingest's write path, and sending range tasks to the range worker: ranges of objects above the stage's
`fanout_threshold_bytes`, and continuations of work that runs out of invocation time."""

TARGET_PRESETS: Mapping[str, Target] = {
    "ingest-write-path": INGEST_WRITE_PATH,
    "ingest-fan-out": INGEST_FAN_OUT,
}
TARGET_CLASSES: Mapping[str, type[Target]] = {
    "lambda": LambdaTarget,
    "sqs": QueueTarget,
    "sns": TopicTarget,
    "sfn": StateMachineTarget,
    "bus": EventBusTarget,
}
EVENT_TYPES = ("created", "deleted", "any")
ENTRY_FIELDS = frozenset({"description", "events", "pattern", "target", "ignore_replays", "retry", "notes"})


class RegistryError(ValueError):
    """An entry of the registry that cannot become a `Consumer`; the message names its file."""


def registry_file(name: str, directory: Path = REGISTRY_DIR) -> Path:
    return directory / f"{name}.json"


def registry_names(directory: Path = REGISTRY_DIR) -> list[str]:
    """The consumers' names as the registry's files spell them (without validating the entries)."""
    return sorted(path.stem for path in directory.glob("*.json")) if directory.is_dir() else []


def load_consumers(
    *, readable_suffixes: Sequence[str], directory: Path = REGISTRY_DIR
) -> tuple[Consumer, ...]:
    """Every entry of the registry as a `Consumer`, in name order; () when there is no registry (an
    installed CLI outside the repository). RegistryError names the first file that is wrong."""
    consumers = []
    for name in registry_names(directory):
        path = registry_file(name, directory)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            consumers.append(consumer_from_entry(name, entry, readable_suffixes=readable_suffixes))
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{path.name}: {exc}") from None
    return tuple(consumers)


def consumer_from_entry(name: str, entry: Any, *, readable_suffixes: Sequence[str]) -> Consumer:
    if not isinstance(entry, Mapping):
        raise ValueError("an entry is a JSON object")
    unknown = sorted(set(entry) - ENTRY_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(ENTRY_FIELDS))})")
    if ("events" in entry) == ("pattern" in entry):
        raise ValueError("give exactly one of `events` and `pattern`")
    pattern = (
        _events_pattern(entry["events"], readable_suffixes) if "events" in entry else dict(entry["pattern"])
    )
    retry = entry.get("retry")
    return Consumer(
        name=name,
        description=str(entry.get("description", "")),
        pattern=pattern,
        target=_target(entry.get("target")),
        ignore_replays=bool(entry.get("ignore_replays", False)),
        retry=RetryOverride(**retry) if retry is not None else None,
    )


def _events_pattern(events: Any, readable_suffixes: Sequence[str]) -> Pattern:
    if not isinstance(events, Mapping) or events.get("type") not in EVENT_TYPES:
        raise ValueError(f"`events` needs a `type`: one of {', '.join(EVENT_TYPES)}")
    unknown = sorted(set(events) - {"type", "prefix", "suffixes"})
    if unknown:
        raise ValueError(f"`events`: unknown field(s) {', '.join(unknown)} (known: type, prefix, suffixes)")
    prefix = events.get("prefix")
    suffixes = events.get("suffixes", ())
    if suffixes == READABLE:
        suffixes = tuple(readable_suffixes)
    if isinstance(suffixes, str) or not all(isinstance(suffix, str) for suffix in suffixes):
        raise ValueError(f"`events.suffixes` is a list of key suffixes or {READABLE!r}")
    if events["type"] == "any":
        if suffixes:
            raise ValueError("`events` of type any takes a prefix only")
        return any_object_event(prefix)
    helper = object_created if events["type"] == "created" else object_deleted
    return helper(prefix, tuple(suffixes))


def _target(target: Any) -> Target:
    if isinstance(target, Mapping) and set(target) == {"preset"}:
        if target["preset"] not in TARGET_PRESETS:
            raise ValueError(
                f"unknown target preset {target['preset']!r} (known: {', '.join(TARGET_PRESETS)})"
            )
        return TARGET_PRESETS[target["preset"]]
    if not isinstance(target, Mapping) or target.get("kind") not in TARGET_CLASSES:
        raise ValueError(f"`target` needs a `kind`: one of {', '.join(TARGET_CLASSES)} (or a `preset`)")
    fields = {key: value for key, value in target.items() if key != "kind"}
    try:
        return TARGET_CLASSES[target["kind"]](**fields)
    except TypeError as exc:
        raise ValueError(f"`target` of kind {target['kind']}: {exc}") from None


def consumer_by_name(name: str, consumers: Sequence[Consumer]) -> Consumer:
    for consumer in consumers:
        if consumer.name == name:
            return consumer
    known = ", ".join(c.name for c in consumers)
    raise KeyError(f"unknown consumer {name!r} (known: {known})")


def validate_registry(consumers: Sequence[Consumer]) -> None:
    """Refuse, before anything is built, what CloudFormation, EventBridge or the CLI would refuse later:
    names that collide (also after PascalCase: they become construct ids and output keys), reserved
    names, and patterns EventBridge rejects. The message is one line naming the consumer."""
    from eventpipe.contract.patterns import InvalidPatternError, validate_pattern

    for index, consumer in enumerate(consumers):
        problem = name_clash(consumer.name, [earlier.name for earlier in consumers[:index]])
        if problem:
            raise ValueError(problem)
        try:
            validate_pattern(consumer.full_pattern("bucket"))
        except InvalidPatternError as invalid:
            raise ValueError(f"consumer {consumer.name!r}: {invalid}") from None
