"""What `eventpipe smoke` reports: the hops' checks and their results, and the canary it uploads.

The runner (`eventpipe.ops.smoke`) fills a `SmokeReport`; the CLI and the demo render it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from eventpipe.contract.errors import EventpipeError

SMOKE_PREFIX = "_smoke/"
"""Reserved key prefix of canary objects: matched by no dataset, never used for real data."""
OWNER_INDEX = "by-owner"  # the table's owner index (infra/constructs/records_table.py, docs/architecture.md)
INGEST = "ingest"
DELETE_SYNC = "delete-sync"
OBJECT_CREATED = "Object Created"
OBJECT_DELETED = "Object Deleted"

OK = "ok"
FAILED = "failed"
NOT_OBSERVABLE = "not observable"
SKIPPED = "skipped"
NOT_REACHED = "not reached"  # a check the run ended before (an earlier hop failed)


class SmokeFailure(EventpipeError):
    """One hop failed; the message names it first (`ingest: ...`)."""

    def __init__(self, hop: str, reason: str) -> None:
        super().__init__(f"{hop}: {reason}")
        self.hop = hop


@dataclass
class Check:
    hop: str
    what: str
    status: str = OK
    detail: str = ""
    seconds: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "what": self.what,
            "status": self.status,
            "detail": self.detail,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
        }


@dataclass
class SmokeReport:
    stack: str
    local: bool
    bucket: str
    key: str
    checks: list[Check] = field(default_factory=list)
    failure: SmokeFailure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "local": self.local,
            "bucket": self.bucket,
            "key": self.key,
            "passed": self.passed,
            "failedHop": self.failure.hop if self.failure else None,
            "reason": str(self.failure) if self.failure else None,
            "checks": [check.as_json() for check in self.checks],
        }


def canary_key(run_id: str | None = None) -> str:
    run = run_id or f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    return f"{SMOKE_PREFIX}{run}.json"


def is_canary(key: str | None) -> bool:
    return bool(key and key.startswith(SMOKE_PREFIX))


def canary_event(bucket: str, key: str, detail_type: str) -> dict[str, Any]:
    """The S3 event the canary causes, as far as rule patterns look at it (key URL-encoded as S3 does).
    Shape per the S3 user guide, "EventBridge event message structure"; a DeleteObject on a versioned
    bucket sends `deletion-type: Delete Marker Created` ("Using EventBridge")."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": "0"}
    if detail_type == OBJECT_CREATED:
        obj |= {"size": 1, "etag": "0"}
    return {
        "version": "0",
        "id": "smoke",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "000000000000",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "reason": "PutObject" if detail_type == OBJECT_CREATED else "DeleteObject",
            **({"deletion-type": "Delete Marker Created"} if detail_type == OBJECT_DELETED else {}),
        },
    }


def render_rows(checks: Iterable[Check]) -> list[tuple[str, str, str, str, str]]:
    """(hop, check, result, seconds, detail) per check, for the table."""
    return [
        (
            c.hop,
            c.what,
            c.status,
            "-" if c.seconds is None else f"{c.seconds:.2f}",
            c.detail,
        )
        for c in checks
    ]
