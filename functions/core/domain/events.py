"""Typed view of the S3 notifications EventBridge delivers (Object Created / Object Deleted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, unquote_plus

OBJECT_CREATED = "Object Created"
OBJECT_DELETED = "Object Deleted"
PERMANENTLY_DELETED = "Permanently Deleted"

# S3 sequencers are hex strings of varying length. The S3 user guide (Event message structure,
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html): "to compare
# these values, first right pad the shorter value with zeros, and then do a lexicographical comparison".
# Stored right-padded to one width, they compare as plain strings, also inside DynamoDB condition
# expressions. 64 is far beyond any length S3 has used. (An older edition of that page said "left pad";
# nothing was ever deployed with the old form, so no stored state needs migrating.)
SEQUENCER_WIDTH = 64


class InvalidEventError(ValueError):
    """The event is not an S3 object notification this consumer understands (never retried)."""


def normalize_sequencer(raw: str) -> str:
    """Right-pad an S3 sequencer so that string order equals S3's order of events for one key."""
    value = raw.strip().upper()
    if not value or len(value) > SEQUENCER_WIDTH or any(c not in "0123456789ABCDEF" for c in value):
        raise InvalidEventError(f"malformed sequencer {raw!r}")
    return value.ljust(SEQUENCER_WIDTH, "0")


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """One S3 object event; `key` is already URL-decoded, `sequencer` already normalized.

    `raw_key` is the key exactly as the event carried it. S3's classic notifications form-encode keys
    (space -> '+'), and so does the decoding here; should a key arrive unencoded instead, the key the
    event means is `raw_key` (see `key_candidates`)."""

    event_id: str
    detail_type: str
    bucket: str
    key: str
    sequencer: str
    reason: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    deletion_type: str | None = None
    replay_name: str | None = None
    time: str | None = None
    raw_key: str | None = None

    @property
    def key_candidates(self) -> tuple[str, ...]:
        """The keys this event may name, most likely first: form-decoded (S3's encoding), percent-decoded
        with '+' kept (keys reported as '%20' for a space), and the key exactly as delivered."""
        if self.raw_key is None or self.raw_key == self.key:
            return (self.key,)
        return tuple(dict.fromkeys((self.key, unquote(self.raw_key), self.raw_key)))

    def for_key(self, key: str) -> ObjectEvent:
        """This event, resolved to name `key` (one of `key_candidates`): it has no other reading left."""
        return replace(self, key=key, raw_key=key)

    @property
    def is_permanent_version_delete(self) -> bool:
        """A versioned object lost one version for good (DeleteObject with a VersionId, or the
        noncurrent-version / delete-marker lifecycle rules): what is current now must be read."""
        return self.deletion_type == PERMANENTLY_DELETED and self.version_id is not None

    @property
    def owner(self) -> str:
        """The `owner` attribute of every item this object writes (`<bucket>/<key>`)."""
        return f"{self.bucket}/{self.key}"

    @property
    def is_created(self) -> bool:
        return self.detail_type == OBJECT_CREATED

    @property
    def is_deleted(self) -> bool:
        return self.detail_type == OBJECT_DELETED

    @classmethod
    def from_eventbridge(cls, event: Mapping[str, Any]) -> ObjectEvent:
        try:
            detail = event["detail"]
            obj = detail["object"]
            raw_key = obj["key"]
            bucket = detail["bucket"]["name"]
            event_id = event["id"]
            detail_type = event["detail-type"]
            raw_sequencer = obj["sequencer"]
        except (KeyError, TypeError) as missing:
            raise InvalidEventError(f"not an S3 object event: missing {missing}") from None
        if not isinstance(raw_key, str) or not raw_key:
            raise InvalidEventError("object key must be a non-empty string")
        etag = obj.get("etag")
        size = obj.get("size")
        return cls(
            event_id=str(event_id),
            detail_type=str(detail_type),
            bucket=str(bucket),
            # EventBridge delivers keys form-encoded (space -> '+'), like S3 event notifications.
            key=unquote_plus(raw_key),
            raw_key=raw_key,
            sequencer=normalize_sequencer(str(raw_sequencer)),
            reason=str(detail.get("reason", "")),
            # Unversioned buckets send no version-id at all; suspended versioning sends "null".
            version_id=_optional_str(obj.get("version-id")),
            etag=_optional_str(etag),
            size=size if isinstance(size, int) else None,
            deletion_type=_optional_str(detail.get("deletion-type")),
            replay_name=_optional_str(event.get("replay-name")),
            time=_optional_str(event.get("time")),
        )


def _optional_str(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
