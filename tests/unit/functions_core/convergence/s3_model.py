"""A reference model of one S3 key's history, written from the S3 user guide, not from our code.

Versioning (https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html and "Working with
delete markers"): every PUT adds a version that becomes current; a DELETE without a version id adds a
delete marker that becomes current (also when the key has no version); a DELETE with a version id
removes that version or delete marker for good, and whatever is then on top is current; GET without a
version id returns the current version, or 404 when the current version is a delete marker (the 404
carries `x-amz-delete-marker: true` and the marker's version id) or when nothing is left. On an
unversioned bucket a PUT replaces the object and a DELETE removes it.
Lifecycle (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html):
expiring the current version of a versioned object adds a delete marker, expiring a noncurrent version
removes it for good, and on an unversioned bucket expiration removes the object.
Events (EventBridge, "Amazon S3 event notifications with EventBridge"): each change publishes one
Object Created / Object Deleted event whose `sequencer` orders the changes of one key;
`deletion-type` is "Delete Marker Created" or "Permanently Deleted".
Sequencers here change length from event to event (as S3's may), and only right-padding orders them
correctly ("0055FF" precedes "0056").
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import IO, Any

from functions.core.domain.object_versions import CurrentVersion, NoCurrentVersion, Presence
from functions.core.domain.table_layout import record_partition

BUCKET = "eventpipe-dev-ingest-model"


@dataclass(frozen=True)
class Version:
    version_id: str
    body: bytes | None  # None: a delete marker

    @property
    def etag(self) -> str | None:
        return None if self.body is None else hashlib.md5(self.body, usedforsecurity=False).hexdigest()


def sequencer(index: int) -> str:
    """The sequencer of a key's `index`-th change (index < 15): increasing under right-padding, and each
    one shorter than the one before, so that left-padding would reverse the order of every pair."""
    return f"0065D9A3C1B2E4{index + 1:X}" + "F" * (30 - 2 * index)


@dataclass
class KeyHistory:
    """One key of one bucket, and the events its changes publish."""

    key: str
    versioned: bool
    versions: list[Version] = field(default_factory=list)  # oldest first; the last one is current
    changes: int = 0
    puts: int = 0

    # --- the operations a client (or a lifecycle rule) performs ------------------------------------
    def put(self, body: bytes) -> dict[str, Any]:
        version = Version(self._new_version_id() if self.versioned else "null", body)
        if not self.versioned:
            self.versions.clear()
        self.versions.append(version)
        return self._event("Object Created", "PutObject", version, etag=version.etag, size=len(body))

    def delete(self, *, reason: str = "DeleteObject") -> dict[str, Any] | None:
        """DeleteObject without a version id (or lifecycle expiration of the current version)."""
        if not self.versioned:
            if not self.versions:
                return None  # nothing was removed: nothing to announce
            self.versions.clear()
            return self._event("Object Deleted", reason, None, deletion_type="Permanently Deleted")
        marker = Version(self._new_version_id(), None)
        self.versions.append(marker)
        return self._event("Object Deleted", reason, marker, deletion_type="Delete Marker Created")

    def delete_version(self, index: int, *, reason: str = "DeleteObject") -> dict[str, Any]:
        """DeleteObject with a version id (or lifecycle expiration of a noncurrent version)."""
        assert self.versioned
        version = self.versions.pop(index)
        return self._event("Object Deleted", reason, version, deletion_type="Permanently Deleted")

    # --- what a reader sees -----------------------------------------------------------------------------
    @property
    def current(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    def _new_version_id(self) -> str:
        return f"v{self.changes + 1}"

    def _event(self, detail_type: str, reason: str, version: Version | None, **extra: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {"key": self.key, "sequencer": sequencer(self.changes)}
        if self.versioned and version is not None:
            obj["version-id"] = version.version_id
        if "etag" in extra:
            obj["etag"] = extra.pop("etag")
        if "size" in extra:
            obj["size"] = extra.pop("size")
        detail: dict[str, Any] = {"bucket": {"name": BUCKET}, "object": obj, "reason": reason}
        if "deletion_type" in extra:
            detail["deletion-type"] = extra.pop("deletion_type")
        self.changes += 1
        return {
            "id": f"event-{self.changes}",
            "detail-type": detail_type,
            "source": "aws.s3",
            "time": "2026-11-30T00:00:00Z",
            "detail": detail,
        }


class ModelReader:
    """`ObjectReader` over a `KeyHistory` (what GetObject / HeadObject answer)."""

    def __init__(self, history: KeyHistory) -> None:
        self.history = history

    def _find(self, key: str, version_id: str | None, etag: str | None) -> Version | None:
        if key != self.history.key:
            return None
        if version_id is not None:
            return next((v for v in self.history.versions if v.version_id == version_id), None)
        current = self.history.current
        if current is None or current.body is None or (etag is not None and current.etag != etag):
            return None
        return current

    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> IO[bytes] | None:
        found = self._find(key, version_id, etag)
        if found is None or found.body is None:
            return None
        return io.BytesIO(found.body)

    def open_range(
        self, bucket: str, key: str, *, version_id: str | None, etag: str | None, start: int, end: int | None
    ) -> IO[bytes] | None:
        found = self._find(key, version_id, etag)
        if found is None or found.body is None:
            return None
        return io.BytesIO(found.body[start : None if end is None else end + 1])

    def open_current(self, bucket: str, key: str) -> CurrentVersion | NoCurrentVersion:
        current = self.history.current if key == self.history.key else None
        if current is None:
            return NoCurrentVersion()
        if current.body is None:
            return NoCurrentVersion(delete_marker_version_id=current.version_id)
        version_id = current.version_id if self.history.versioned else None
        return CurrentVersion(io.BytesIO(current.body), version_id, current.etag)

    def presence(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> Presence:
        if key != self.history.key or not self.history.versions:
            return Presence.NONE
        if (version_id is not None or etag is not None) and self._find(key, version_id, etag) is not None:
            return Presence.ANNOUNCED
        return Presence.OTHER

    def is_live(self, bucket: str, key: str) -> bool:
        current = self.history.current if key == self.history.key else None
        return current is not None and current.body is not None


def jsonl(lines: list[Any]) -> bytes:
    """JSON Lines; a `None` line is not JSON (a rejected record)."""
    return b"".join(b"not json\n" if line is None else json.dumps(line).encode() + b"\n" for line in lines)


def expected_records(history: KeyHistory, lines_of: dict[bytes, list[Any]]) -> dict[tuple[str, str], Any]:
    """What the table must hold for this key: the records of its current version, by position."""
    current = history.current
    if current is None or current.body is None:
        return {}
    return {
        (record_partition(history.key, position), f"{position:012d}"): line
        for position, line in enumerate(lines_of[current.body], start=1)
        if line is not None
    }
