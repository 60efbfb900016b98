"""The per-object state item (the version guard): what it records, and what taking its lease returns.

Store failures that a retry of the event can fix are `TransientStoreError`s: the handler raises them so
Lambda retries the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from functions.core.domain.table_layout import LAYOUT, LEGACY_LAYOUT, Item

# Seconds by which two hosts' clocks may disagree when one judges whether another's deadline has passed.
CLOCK_MARGIN = 30.0


class TransientStoreError(RuntimeError):
    """The store did not accept work after bounded retries: raise so Lambda retries the event."""


class LeaseLostError(TransientStoreError):
    """Another processor took over the object while this one was writing (it ran past its lease)."""


class OthersWritingError(TransientStoreError):
    """A fan-out's commit found another worker of it still registered as writing: the last one to
    leave commits instead (range_ingest.py)."""


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
    # Which key layout the object's items follow (table_layout.py); a state item without one predates it.
    layout: int = LAYOUT
    # The sequencer of the last attempt that took the lease since the last commit (set by every acquire).
    writer_sequencer: str | None = None
    # A checkpoint of an interrupted attempt: positions up to `progress_position` of the content
    # `progress_version` are written (for the event `progress_sequencer`).
    progress_position: int = 0
    progress_sequencer: str | None = None
    progress_version: str | None = None
    # A fan-out in progress (fan_out.py): the lease token it runs under, its ranges, and which are done.
    fanout_token: str | None = None
    fanout_ranges: int = 0
    fanout_done: tuple[RangeSummary, ...] = ()
    # The fan-out's workers writing right now, each with the time its invocation surely ended by; and
    # the range whose worker is committing. Nothing may take over or commit while another writes.
    fanout_writers: tuple[tuple[str, float], ...] = ()
    fanout_finalizer: int | None = None

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
            layout=int(number("layout")) or LEGACY_LAYOUT,
            writer_sequencer=text("writer_sequencer"),
            progress_position=int(number("progress_position")),
            progress_sequencer=text("progress_sequencer"),
            progress_version=text("progress_version"),
            fanout_token=text("fanout_token"),
            fanout_ranges=int(number("fanout_ranges")),
            fanout_writers=tuple(
                sorted(
                    (writer, float(value["N"]))
                    for writer, value in item.get("fanout_writers", {}).get("M", {}).items()
                )
            ),
            fanout_finalizer=int(number("fanout_finalizer")) if "fanout_finalizer" in item else None,
            fanout_done=tuple(
                sorted(
                    RangeSummary.from_attribute(int(index), value)
                    for index, value in item.get("fanout_done", {}).get("M", {}).items()
                )
            ),
        )

    def other_writers(self, writer: str | None, now: float) -> tuple[list[str], list[str]]:
        """The fan-out writers other than `writer` (None: all of them): (still possibly writing, surely
        gone). A writer is gone once its invocation's deadline is past (plus a margin for clock
        differences)."""
        active = [name for name, ends in self.fanout_writers if name != writer and ends + CLOCK_MARGIN >= now]
        gone = [name for name, ends in self.fanout_writers if name != writer and ends + CLOCK_MARGIN < now]
        return active, gone

    def resumable_from(self, sequencer: str, content: str) -> int:
        """How many positions of `content` (a version identity) an interrupted attempt of the same event
        checkpointed, if no other event's attempt took the lease since (0: start from the beginning)."""
        if (
            self.dirty
            and self.progress_sequencer == sequencer
            and self.writer_sequencer == sequencer
            and self.progress_version == content
        ):
            return self.progress_position
        return 0

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


@dataclass(frozen=True, slots=True, order=True)
class RangeSummary:
    """What the worker of one range of a fan-out wrote (kept in the state item until the commit)."""

    index: int
    written: int = 0
    rejected: int = 0
    last_position: int = 0  # the last position the range owns (0: it owns no line)
    saw_record: bool = False  # some owned line was not blank
    requests: int = 0

    def to_attribute(self) -> dict[str, object]:
        numbers = {
            "written": self.written,
            "rejected": self.rejected,
            "last_position": self.last_position,
            "requests": self.requests,
        }
        fields: dict[str, object] = {name: {"N": str(value)} for name, value in numbers.items()}
        fields["saw_record"] = {"BOOL": self.saw_record}
        return {"M": fields}

    @classmethod
    def from_attribute(cls, index: int, value: dict[str, object]) -> RangeSummary:
        fields = value.get("M", {}) if isinstance(value, dict) else {}
        assert isinstance(fields, dict)

        def number(name: str) -> int:
            return int(fields[name]["N"]) if name in fields else 0

        saw = fields.get("saw_record", {})
        return cls(
            index=index,
            written=number("written"),
            rejected=number("rejected"),
            last_position=number("last_position"),
            saw_record=bool(isinstance(saw, dict) and saw.get("BOOL")),
            requests=number("requests"),
        )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far an attempt has durably written one content (resumable_from reads it back)."""

    sequencer: str
    content: str
    position: int


class StateStatus(StrEnum):
    """What a committed state item says about its object."""

    PRESENT = "present"  # the records of `version_id` / `etag` are in the table
    DELETED = "deleted"  # tombstone: the key reads as absent, no records
    UNREADABLE = "unreadable"  # that version can never be read (archived, SSE-C, KMS): reported, no records
