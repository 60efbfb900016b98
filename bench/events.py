"""Real-shaped ingest inputs: an S3 "Object Created" EventBridge event and a Lambda context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote_plus

ACCOUNT = "123456789012"
REGION = "us-east-1"


def object_created(
    *, bucket: str, key: str, size: int, etag: str, sequencer: str, version_id: str | None
) -> dict[str, object]:
    """The event S3 puts on the default bus for a PutObject (key URL-encoded form-style, like S3 does)."""
    obj: dict[str, object] = {
        "key": quote_plus(key),
        "size": size,
        "etag": etag.strip('"'),
        "sequencer": sequencer,
    }
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def sequencer(counter: int) -> str:
    """S3 sequencers are hex strings that grow per key; 18 hex digits like real ones."""
    return f"{counter:018X}"


@dataclass(frozen=True, slots=True)
class LambdaContext:
    """The attributes Powertools and the handler read from Lambda's context object."""

    function_name: str = "eventpipe-bench-ingest"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:eventpipe-bench-ingest"
    log_group_name: str = "/aws/lambda/eventpipe-bench-ingest"
    log_stream_name: str = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000
