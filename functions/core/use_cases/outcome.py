"""What one event did to its object: the result every use case returns."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """What one event did to its object."""

    INGESTED = "ingested"  # the table holds the records of the version the event announced
    RESTORED = "restored"  # a version deletion made another version current; the table mirrors it
    DELETED = "deleted"  # the key reads as absent; its records are gone, a tombstone is kept
    UNCHANGED = "unchanged"  # the table already mirrored what is current; only the sequencer moved
    UNREADABLE = "unreadable"  # the version can never be read: reported, no records, not retried
    STALE = "stale"  # a newer event of the object was already applied (or its version is gone)
    SUPERSEDED = "superseded"  # a newer event took over while this one was writing
    FANNED_OUT = "fanned_out"  # the object was split into ranges sent to the range workers
    RANGE_WRITTEN = "range_written"  # one range of a fan-out is written (the last one commits)
    CONTINUED = "continued"  # checkpointed before the invocation ended; a continuation resumes it


@dataclass(slots=True)
class Outcome:
    """What one event did; the handler turns it into logs and metrics."""

    status: Status
    object_id: str
    records_written: int = 0
    records_rejected: int = 0
    items_removed: int = 0
    write_requests: int = 0
    report_key: str | None = None
    detail: str = ""
