"""What the use cases share: their ports (`Services`) and their result (`Outcome`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from functions.core.datasets import DatasetRegistry
from functions.core.objects import ObjectReader
from functions.core.rejects import ReportSink
from functions.core.repository import RecordStore


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    lease_seconds: float = 330.0
    max_wait_seconds: float = 60.0
    poll_seconds: float = 0.25


class Status(StrEnum):
    """What one event did to its object."""

    INGESTED = "ingested"  # the table holds the records of the version the event announced
    RESTORED = "restored"  # a version deletion made another version current; the table mirrors it
    DELETED = "deleted"  # the key reads as absent; its records are gone, a tombstone is kept
    UNCHANGED = "unchanged"  # the table already mirrored what is current; only the sequencer moved
    UNREADABLE = "unreadable"  # the version can never be read: reported, no records, not retried
    STALE = "stale"  # a newer event of the object was already applied (or its version is gone)
    SUPERSEDED = "superseded"  # a newer event took over while this one was writing


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


@dataclass(slots=True)
class Services:
    """The ports a use case talks to (real AWS clients in Lambda, moto or fakes in tests)."""

    store: RecordStore
    objects: ObjectReader
    reports: ReportSink
    datasets: DatasetRegistry
    max_json_bytes: int
    lease: LeasePolicy = field(default_factory=LeasePolicy)
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    # The Lambda request id: constant across Lambda's retries of one invocation, different for a
    # duplicate delivery of the same event (a separate invocation).
    invocation_id: str | None = None

    def timestamp(self) -> str:
        """Now, as the ISO-8601 UTC text that items and state items record."""
        return datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")
