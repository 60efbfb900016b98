"""Which object key an event names, whatever encoding its key arrived in.

S3's classic notifications form-encode keys (space -> '+', '%XX'), and EventBridge events are decoded
the same way here (as Powertools' data classes do). One AWS solutions project reported EventBridge keys
that arrive with `%20` for spaces and `+` kept as is; our facts page records it. We do not bet data on
either: when the decoded key and the key as delivered differ, S3 itself says which one the event means.
"""

from __future__ import annotations

from functions.core.events import ObjectEvent
from functions.core.objects import Presence
from functions.core.services import Services


def key_as_delivered(services: Services, event: ObjectEvent) -> ObjectEvent | None:
    """For an Object Created event whose decoded key does not hold the announced version: the event
    naming the key exactly as delivered, if that key holds it (a version id names one object, so this
    can never pick the wrong one); else None. Costs a request only on that rare path."""
    for key in event.key_candidates[1:]:
        other = event.for_key(key)
        found = services.objects.presence(other.bucket, key, version_id=other.version_id, etag=other.etag)
        if found is Presence.ANNOUNCED:
            return other
    return None


def resolve_key(services: Services, event: ObjectEvent) -> ObjectEvent:
    """The Object Deleted `event`, naming the key it is about. Only keys whose two readings differ cost
    a look-up (one or two HEAD requests, a GetItem at most).

    In order: the first candidate (decoded key first) that holds the announced version or delete
    marker; else that exists at all in S3; else that the table already tracks; else the decoded key
    (nothing of either exists: whatever the event did, that key has no records).
    """
    candidates = event.key_candidates
    if len(candidates) == 1:
        return event
    presence = {
        key: services.objects.presence(event.bucket, key, version_id=event.version_id, etag=event.etag)
        for key in candidates
    }
    for wanted in (Presence.ANNOUNCED, Presence.OTHER):
        for key in candidates:
            if presence[key] is wanted:
                return event.for_key(key)
    for key in candidates:
        if services.store.has_state(event.for_key(key).owner):
            return event.for_key(key)
    return event
