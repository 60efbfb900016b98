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


def resolve_key(services: Services, event: ObjectEvent) -> ObjectEvent:
    """`event`, naming the key it is about. Only keys whose two readings differ cost a look-up.

    In order: the candidate that holds the announced version (a version id names one object, so this
    is never ambiguous) or ETag; else the one that exists at all in S3; else the one the table already
    tracks; else the decoded key (nothing of either exists: whatever the event did, it has no records).
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
