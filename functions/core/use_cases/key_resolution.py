"""Which object key an event names, whatever encoding its key arrived in.

S3's classic notifications form-encode keys (space -> '+', '%XX'), and EventBridge events are decoded
the same way here (as Powertools' data classes do). One AWS solutions project reported EventBridge keys
that arrive with `%20` for spaces and `+` kept as is; our facts page records it. We do not bet data on
either, and we never let one key's event touch another key (sequencers order one key's events only):
- Object Created on a versioned bucket: a version id names exactly one object, so the key is the
  reading that holds it (one HEAD per event whose readings differ);
- Object Created on an unversioned bucket: only the decoded key (an ETag can match a sibling object
  with the same bytes, so it cannot tell the readings apart);
- Object Deleted: the reading that holds the announced version or delete marker; else the decoded key
  if the table tracks it; else another reading only if the table tracks it and S3 no longer serves it
  (its object was the one deleted); else the decoded key. A live sibling is never chosen.
"""

from __future__ import annotations

from functions.core.domain.events import ObjectEvent
from functions.core.domain.object_versions import Presence
from functions.core.use_cases.ports import Services


def resolve_created_key(services: Services, event: ObjectEvent) -> ObjectEvent:
    """The Object Created `event`, naming the key that holds its version."""
    if len(event.key_candidates) == 1 or event.version_id is None:
        return event
    for key in event.key_candidates:
        found = services.objects.presence(event.bucket, key, version_id=event.version_id, etag=None)
        if found is Presence.ANNOUNCED:
            return event.for_key(key)
    return event.for_key(event.key)  # the version is gone under every reading: stale anyway


def resolve_deleted_key(services: Services, event: ObjectEvent) -> ObjectEvent:
    """The Object Deleted `event`, naming the key it is about (see the module docstring)."""
    candidates = event.key_candidates
    if len(candidates) == 1:
        return event
    if event.version_id is not None:
        for key in candidates:
            found = services.objects.presence(event.bucket, key, version_id=event.version_id, etag=None)
            if found is Presence.ANNOUNCED:
                return event.for_key(key)
    decoded = event.for_key(event.key)
    if services.store.has_state(decoded.owner):
        return decoded
    for key in candidates[1:]:
        other = event.for_key(key)
        if services.store.has_state(other.owner) and not services.objects.is_live(event.bucket, key):
            return other
    return decoded
