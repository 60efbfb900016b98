"""The per-object state item (the version guard): what it records, and what taking its lease returns.

Store failures that a retry of the event can fix are `TransientStoreError`s: the handler raises them so
Lambda retries the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from functions.core.domain.table_layout import Item


class TransientStoreError(RuntimeError):
    """The store did not accept work after bounded retries: raise so Lambda retries the event."""


class LeaseLostError(TransientStoreError):
    """Another processor took over the object while this one was writing (it ran past its lease)."""


@dataclass(frozen=True, slots=True)
class ObjectState:
    """The state item of one object (all fields optional: a first event finds none)."""

    sequencer: str | None = None
    status: str | None = None
    version_id: str | None = None
    etag: str | None = None
    last_position: int = 0
    rejected_count: int = 0
    natural_owned: bool = False
    dirty: bool = False
    lease_token: str | None = None
    lease_expires: float = 0.0
    pending_sequencer: str | None = None

    @classmethod
    def from_item(cls, item: Item | None) -> ObjectState:
        if not item:
            return cls()

        def text(name: str) -> str | None:
            value = item.get(name)
            return value["S"] if value else None

        def number(name: str) -> float:
            value = item.get(name)
            return float(value["N"]) if value else 0.0

        def flag(name: str) -> bool:
            value = item.get(name)
            return bool(value and value.get("BOOL"))

        return cls(
            sequencer=text("sequencer"),
            status=text("status"),
            version_id=text("version_id"),
            etag=text("etag"),
            last_position=int(number("last_position")),
            rejected_count=int(number("rejected_count")),
            natural_owned=flag("natural_owned"),
            dirty=flag("dirty") or text("lease_token") is not None,
            lease_token=text("lease_token"),
            lease_expires=number("lease_expires"),
            pending_sequencer=text("pending_sequencer"),
        )

    def is_newer_than(self, sequencer: str) -> bool:
        """True when this state already reflects (or awaits) a later event of the object."""
        return (self.sequencer is not None and self.sequencer > sequencer) or (
            self.pending_sequencer is not None and self.pending_sequencer > sequencer
        )


@dataclass(frozen=True, slots=True)
class Acquired:
    prior: ObjectState


@dataclass(frozen=True, slots=True)
class Refused:
    current: ObjectState
    stale: bool  # False: a lease of an equal-or-older event is still active (busy)


@dataclass(frozen=True, slots=True)
class Commit:
    """What the state item records once an event's effect is complete."""

    sequencer: str
    status: str  # a `StateStatus`
    event_id: str
    committed_at: str
    version_id: str | None = None
    etag: str | None = None
    dataset: str | None = None
    record_count: int = 0
    rejected_count: int = 0
    last_position: int = 0
    natural_owned: bool = False


class StateStatus(StrEnum):
    """What a committed state item says about its object."""

    PRESENT = "present"  # the records of `version_id` / `etag` are in the table
    DELETED = "deleted"  # tombstone: the key reads as absent, no records
    UNREADABLE = "unreadable"  # that version can never be read (archived, SSE-C, KMS): reported, no records
