"""AWS-shaped S3 -> EventBridge notification events ("Object Created" / "Object Deleted").

The shape follows the S3 user guide (EventBridge event message structure): `detail.object` carries
`key` (URL-encoded form-style), `size` and `etag` (created only), `version-id` only on versioned
buckets, and a `sequencer` that increases for the same key.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

CREATED = "Object Created"
DELETED = "Object Deleted"

# One process-wide counter: increasing for every key (per-key order is what AWS guarantees); seeded
# from the clock so a restarted emulator keeps issuing larger values.
_sequence = itertools.count(time.time_ns() // 1000)
_sequence_lock = threading.Lock()


def next_sequencer() -> str:
    """An uppercase hex sequencer of fixed width, so string comparison equals numeric comparison."""
    with _sequence_lock:
        value = next(_sequence)
    return f"{value:018X}"


def aws_time(moment: datetime | None = None) -> str:
    """EventBridge's `time` format: ISO 8601, second precision, `Z` suffix."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """What happened to one object, as seen by the S3 request that did it."""

    bucket: str
    key: str
    reason: str  # PutObject | CopyObject | CompleteMultipartUpload | DeleteObject
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None  # only on versioned buckets
    deletion_type: str | None = None  # "Permanently Deleted" | "Delete Marker Created"


def build_event(change: ObjectChange, *, account: str, region: str, partition: str = "aws") -> dict[str, Any]:
    """Build one EventBridge event for `change`, as S3 publishes it to the default bus."""
    deleted = change.reason == "DeleteObject"
    obj: dict[str, Any] = {"key": quote_plus(change.key, safe="/")}
    if not deleted:
        obj["size"] = change.size or 0
        obj["etag"] = (change.etag or "").strip('"')
    if change.version_id is not None:
        obj["version-id"] = change.version_id
    obj["sequencer"] = next_sequencer()
    detail: dict[str, Any] = {
        "version": "0",
        "bucket": {"name": change.bucket},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account,
        "source-ip-address": "127.0.0.1",
        "reason": change.reason,
    }
    if deleted:
        detail["deletion-type"] = change.deletion_type or "Permanently Deleted"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DELETED if deleted else CREATED,
        "source": "aws.s3",
        "account": account,
        "time": aws_time(),
        "region": region,
        "resources": [f"arn:{partition}:s3:::{change.bucket}"],
        "detail": detail,
    }
