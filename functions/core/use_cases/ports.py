"""What the use cases talk to: the ports (record store, object reader, report sink) bundled as
`Services`, implemented on AWS in `functions.core.adapters` and in memory by the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Protocol

from functions.core.domain.datasets import DatasetRegistry
from functions.core.domain.object_state import (
    Acquired,
    Checkpoint,
    Commit,
    ObjectState,
    RangeSummary,
    Refused,
)
from functions.core.domain.object_versions import CurrentVersion, NoCurrentVersion, Presence
from functions.core.domain.table_layout import Item, Key


class BatchWriter(Protocol):
    requests: int

    def put(self, item: Item) -> None: ...
    def delete(self, key: Key) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None:
        """Drop what is buffered and wait for what is in flight: nothing is written afterwards."""
        ...


class RecordStore(Protocol):
    """Everything the ingest and delete-sync use cases need from the table."""

    def acquire(
        self, object_id: str, sequencer: str, token: str, *, now: float, lease_seconds: float, natural: bool
    ) -> Acquired | Refused: ...
    def announce(self, object_id: str, sequencer: str) -> None: ...
    def superseded(self, object_id: str, sequencer: str) -> bool: ...
    def release(self, object_id: str, token: str, *, dirty: bool) -> None: ...
    def commit(self, object_id: str, token: str, commit: Commit, *, writer: str | None = None) -> None: ...
    def advance(
        self, object_id: str, token: str, *, sequencer: str, event_id: str, committed_at: str
    ) -> None: ...
    def checkpoint(self, object_id: str, token: str, checkpoint: Checkpoint) -> None: ...
    def start_fanout(self, object_id: str, token: str, *, ranges: int, lease_expires: float) -> None: ...
    def join_fanout(
        self, object_id: str, token: str, writer: str, *, index: int, deadline: float
    ) -> ObjectState | None: ...
    def leave_fanout(
        self,
        object_id: str,
        token: str,
        writer: str,
        *,
        done: RangeSummary | None = None,
        gone: Iterable[str] = (),
        drop_claim: bool = False,
    ) -> ObjectState | None: ...
    def claim_finalize(
        self,
        object_id: str,
        token: str,
        writer: str,
        *,
        index: int,
        ranges: int,
        deadline: float,
        gone: Iterable[str],
    ) -> bool: ...
    def abandon_fanout(
        self, object_id: str, token: str, writer: str | None, *, gone: Iterable[str]
    ) -> bool: ...
    def has_state(self, object_id: str) -> bool: ...
    def writer(self, on_refused: Callable[[Item, str], None] | None = None) -> BatchWriter: ...
    def positions_after(self, partition: str, position: int, owner: str) -> Iterator[Key]: ...
    def owned_natural_keys(self, owner: str) -> Iterator[Key]: ...
    def delete_owned(self, keys: Iterable[Key], owner: str) -> int: ...


class ObjectReader(Protocol):
    def open(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> IO[bytes] | None:
        """A readable stream of exactly that object version, or None when it no longer exists.
        Raises UnreadableVersionError when it exists but can never be read."""
        ...

    def open_range(
        self, bucket: str, key: str, *, version_id: str | None, etag: str | None, start: int, end: int | None
    ) -> IO[bytes] | None:
        """Bytes `start`..`end` (inclusive; None: to the end) of exactly that version, or None when it
        no longer exists."""
        ...

    def open_current(self, bucket: str, key: str) -> CurrentVersion | NoCurrentVersion:
        """Whatever version of the key is current right now (at least as new as any event seen)."""
        ...

    def presence(self, bucket: str, key: str, *, version_id: str | None, etag: str | None) -> Presence:
        """Whether `key` holds the announced version (or ETag), something else, or nothing."""
        ...

    def is_live(self, bucket: str, key: str) -> bool:
        """Whether GetObject of `key` (no version) would return an object (not absent, not a marker)."""
        ...


class ReportSink(Protocol):
    def put(self, key: str, body: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def delete(self, key: str) -> None: ...


class WorkQueue(Protocol):
    """Where a fan-out sends its range tasks (an SQS queue consumed by the range worker)."""

    def send(self, bodies: list[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class FanoutPolicy:
    """When an object is split into ranges ingested in parallel (fan_out.py); None queue: never."""

    queue: WorkQueue | None = None
    threshold_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    lease_seconds: float = 330.0
    max_wait_seconds: float = 60.0
    poll_seconds: float = 0.25


@dataclass(slots=True)
class Services:
    """The ports a use case talks to (real AWS clients in Lambda, moto or fakes in tests)."""

    store: RecordStore
    objects: ObjectReader
    reports: ReportSink
    datasets: DatasetRegistry
    max_json_bytes: int
    lease: LeasePolicy = field(default_factory=LeasePolicy)
    fanout: FanoutPolicy = field(default_factory=FanoutPolicy)
    # BatchWriteItem requests the store's writer keeps in flight (sizes what the write loop keeps).
    writers: int = 1
    # When a long ingest must hand over to a continuation (clock time; None: never, e.g. outside Lambda).
    hand_over_at: float | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    # The Lambda request id: constant across Lambda's retries of one invocation, different for a
    # duplicate delivery of the same event (a separate invocation).
    invocation_id: str | None = None

    def timestamp(self) -> str:
        """Now, as the ISO-8601 UTC text that items and state items record."""
        return datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")
