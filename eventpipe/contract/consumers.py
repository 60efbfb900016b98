"""The consumer registry: every consumer of the project bus is one declarative entry.

A `Consumer` names an event pattern and a target; the CDK construct (`infra/constructs/consumer.py`)
turns each entry into a rule with a dead-letter queue, retry policy, alarms and outputs, so adding a
consumer is adding one entry to `CONSUMERS`. This module must stay importable without aws_cdk: the
operator CLI reads the registry (`eventpipe consumers`, `eventpipe pattern test`).

Patterns are plain EventBridge pattern dicts restricted to what the consumer cares about; the construct
adds `source: ["aws.s3"]` and the ingest bucket's name (see `full_pattern`).

Key prefixes and suffixes are matched by EventBridge against the key as S3 publishes it, URL-encoded
form-style (space -> `+`, `=` -> `%3D`, non-ASCII -> `%XX`): write a prefix with such characters in
that encoded form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from eventpipe.contract.outputs import pascal_case

Pattern = dict[str, Any]

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
"""Consumer names: lowercase words joined by `-` (they become rule ids, PascalCase outputs, folders)."""

MAX_NAME_LENGTH = 40

S3_SOURCE = "aws.s3"

JSON_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson")
"""Suffixes the ingest function reads; each also accepted gzip-compressed (`.json.gz`...)."""


# --- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LambdaTarget:
    """A function of this project, code in `functions/<name with - as _>/handler.py`.

    The permission flags are the whole IAM surface of the function: each maps to a fixed,
    wildcard-free set of actions on one project resource:
    `reads_ingest_bucket` s3:GetObject, s3:GetObjectVersion, s3:ListBucket;
    `reads_table` dynamodb:GetItem, BatchGetItem, Query, ConditionCheckItem (table + `by-owner` index);
    `writes_table` dynamodb:PutItem, UpdateItem, DeleteItem, BatchWriteItem;
    `writes_rejects` s3:PutObject, s3:DeleteObject on the rejects bucket.
    """

    kind: Literal["lambda"] = field(default="lambda", init=False)
    memory_mb: int = 512
    timeout_seconds: int = 300
    reads_ingest_bucket: bool = False
    reads_table: bool = False
    writes_table: bool = False
    writes_rejects: bool = False

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
}
"""Names a consumer cannot take, with the reason."""


@dataclass(frozen=True)
class Consumer:
    name: str
    pattern: Pattern
    target: Target
    description: str = ""
    ignore_replays: bool = False
    retry: RetryOverride | None = None

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name) or len(self.name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"consumer name {self.name!r}: use lowercase letters/digits joined by '-' "
                f"(at most {MAX_NAME_LENGTH} characters)"
            )
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


def with_gzip(suffixes: Sequence[str]) -> tuple[str, ...]:
    """`(".json",)` -> `(".json", ".json.gz")`."""
    return tuple(s for suffix in suffixes for s in (suffix, f"{suffix}.gz"))


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

INGEST_WRITE_PATH = LambdaTarget(
    memory_mb=512,
    reads_ingest_bucket=True,
    reads_table=True,
    writes_table=True,
    writes_rejects=True,
)
"""What running ingest's write path takes: read uploads, read/write the table, write rejects reports."""

CONSUMERS: tuple[Consumer, ...] = (
    Consumer(
        name="ingest",
        description="Writes the records of uploaded JSON / JSON Lines objects into the table.",
        pattern=object_created(suffixes=with_gzip(JSON_SUFFIXES)),
        target=INGEST_WRITE_PATH,
    ),
    Consumer(
        name="delete-sync",
        description="Removes the records of deleted objects, so the table mirrors the bucket.",
        # The keys ingest reads: deleting any other object has no records to remove (and would only
        # leave a tombstone state item behind).
        pattern=object_deleted(suffixes=with_gzip(JSON_SUFFIXES)),
        # Permanently deleting the current version makes an older one current without an Object
        # Created event: delete-sync then runs ingest's write path on it (reads the bucket, may write
        # a rejects report), with ingest's memory.
        target=INGEST_WRITE_PATH,
    ),
    Consumer(
        name="audit",
        description="Keeps every raw object event of the bucket for operators and tests.",
        pattern=any_object_event(),
        target=QueueTarget(),
    ),
)


def consumer_by_name(name: str, consumers: Sequence[Consumer] = CONSUMERS) -> Consumer:
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

    seen: dict[str, str] = {}
    for consumer in consumers:
        if consumer.name in RESERVED_NAMES:
            raise ValueError(f"consumer {consumer.name!r}: reserved name ({RESERVED_NAMES[consumer.name]})")
        pascal = consumer.pascal_name
        if pascal in seen:
            raise ValueError(f"consumers {seen[pascal]!r} and {consumer.name!r} collide as {pascal!r}")
        seen[pascal] = consumer.name
        try:
            validate_pattern(consumer.full_pattern("bucket"))
        except InvalidPatternError as invalid:
            raise ValueError(f"consumer {consumer.name!r}: {invalid}") from None
