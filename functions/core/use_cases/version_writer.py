"""Streams the records of one object version (or of one byte range of it) into the table, under the
object's lease: items for good records, report entries for the rest, cleared positions for blank and
bad lines. mirror_object.py (a whole version) and range_ingest.py (one range of a fan-out) use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import IO, Any, Final

from functions.core.domain.events import ObjectEvent
from functions.core.domain.formats import SUPPORTED_DESCRIPTION, detect_format
from functions.core.domain.readers import BLANK, Malformed, RecordStream, UnreadableObjectError, read_records
from functions.core.domain.reasons import Reason
from functions.core.domain.records import ItemBuilder, RecordRejectedError
from functions.core.domain.rejects_report import RejectsReport
from functions.core.domain.table_layout import SHARD_BLOCK, AttributeValue, Item, record_key
from functions.core.use_cases.object_lease import OutOfTime, Superseded
from functions.core.use_cases.ports import BatchWriter, Services

# How often (in records) a long-running ingest checks whether a newer event is waiting for the object.
SUPERSEDE_CHECK_EVERY: Final = 2000
# How often (in positions) a long-running ingest records how far it has durably written.
CHECKPOINT_EVERY: Final = 50_000
# How much of a natural-key record's text is kept to quote it should a later record take its key.
_NATURAL_RAW_KEPT: Final = 512

Checkpointer = Callable[[int], None]


class VersionWriter:
    """Writes one version's records; `written`, `last_position` and `report` say what it did.

    `resume_after`: positions up to it were durably written by an interrupted attempt of the same event
    (its checkpoint): they are read again (the report and counts are rebuilt exactly) but not written.
    A range of a fan-out numbers its lines with an offset and may skip the first line it reads (the tail
    of a line owned by the previous range: byte_ranges.py).
    """

    def __init__(
        self,
        services: Services,
        event: ObjectEvent,
        builder: ItemBuilder,
        *,
        stale_up_to: int | None,
        resume_after: int = 0,
        checkpoint: Checkpointer | None = None,
    ) -> None:
        self._services = services
        self._event = event
        self._builder = builder
        self._stale_up_to = stale_up_to
        self._resume_after = resume_after
        self._checkpoint = checkpoint
        self._position_keyed = not builder.dataset.has_natural_key
        self._refused: list[int] = []
        # position -> JSON Lines text of records the writer may still send (a refused one is quoted as
        # written): twice what the writer can hold (its in-flight batches plus the one it fills).
        self._raw: dict[int, bytes] = {}
        self._raw_kept = 2 * SHARD_BLOCK * (services.writers + 1)
        # natural key digest -> (position, raw text prefix) of the record currently holding that key
        self._natural: dict[bytes, tuple[int, bytes | None]] = {}
        self._writer = services.store.writer(self._refuse)
        self._records: RecordStream | None = None  # the stream being written (for `.json` quotes)
        self._offset = 0
        self.report = RejectsReport()
        self.written = 0
        self.last_position = 0
        self.saw_record = False

    @property
    def requests(self) -> int:
        return self._writer.requests

    def write_records(
        self, stream: IO[bytes], *, position_offset: int = 0, skip_first: bool = False, whole: bool = True
    ) -> None:
        """Write every record of `stream`: its k-th line is position k + `position_offset`. A range of a
        fan-out (`whole=False`) skips its first line if asked (byte_ranges.py) and leaves the verdict
        "empty object" to the finalizer, which sees every range's `saw_record`."""
        fmt = detect_format(self._event.key)
        if fmt is None:
            self.report.add(0, Reason.UNSUPPORTED_FORMAT, SUPPORTED_DESCRIPTION)
        else:
            self._offset = position_offset
            try:
                self._write_all(
                    read_records(stream, fmt, max_json_bytes=self._services.max_json_bytes),
                    skip_first=skip_first,
                )
            except UnreadableObjectError as unreadable:
                if whole or unreadable.reason != Reason.EMPTY_OBJECT:
                    self.report.add(unreadable.position, unreadable.reason, unreadable.detail)
            except BaseException:
                self._writer.close()  # no request of this attempt may land after its lease is released
                raise
        self._writer.flush()
        self._clear_refused_positions()

    def _write_all(self, records: RecordStream, *, skip_first: bool) -> None:
        store, event, build, writer = self._services.store, self._event, self._builder.build, self._writer
        self._records = records
        offset, resume_after = self._offset, self._resume_after
        next_checkpoint = resume_after + CHECKPOINT_EVERY
        for local_position, value in records:
            if skip_first and local_position == 1:
                continue
            position = local_position + offset
            self.last_position = position
            if value is BLANK:
                self._clear(position)
                continue
            self.saw_record = True
            if type(value) is Malformed:
                self.report.add(position, value.reason, value.detail, value.raw)
                self._clear(position)
                continue
            # JSON Lines: the line is at hand, keep it. A .json object keeps its whole text, and finding
            # an element in it costs ~3 us: only done below for a record that is actually quoted.
            raw = None if records.keeps_text else records.current_line
            try:
                item = build(position, value)
            except RecordRejectedError as rejected:
                quote = self._quote(position, raw) or value
                self.report.add(position, rejected.reason, rejected.detail, quote)
                self._clear(position)
                continue
            if not self._position_keyed:
                self._claim_natural_key(item, position, raw)
            self.written += 1
            if position <= resume_after:
                continue  # durably written by the attempt whose checkpoint this resumes
            if raw is not None:
                self._raw[position] = raw
                if len(self._raw) > self._raw_kept:
                    del self._raw[next(iter(self._raw))]
            writer.put(item)
            if self.written % SUPERSEDE_CHECK_EVERY == 0 and store.superseded(event.owner, event.sequencer):
                raise Superseded
            if position >= next_checkpoint and self._checkpoint is not None:
                next_checkpoint = position + CHECKPOINT_EVERY
                self._save_progress(position)

    def _save_progress(self, position: int) -> None:
        """Checkpoint at `position` once everything up to it is durably written, and hand over to a
        continuation if the invocation is about to end. A record DynamoDB refused in this attempt has
        its report entry only in memory: checkpoints stop from then on, so a resumed attempt sends it
        again and reports it again (and this attempt runs on, as it would without checkpoints)."""
        self._writer.flush()
        if self._refused or self._checkpoint is None:
            return
        self._checkpoint(position)
        hand_over_at = self._services.hand_over_at
        if hand_over_at is not None and self._services.clock() >= hand_over_at:
            raise OutOfTime(position)

    def _quote(self, position: int, raw: bytes | None) -> bytes | None:
        """The record's text as written: the kept line, or the element of a `.json` object's text."""
        if raw is not None:
            return raw
        if self._records is None:
            return None
        return self._records.raw_at(position - self._offset)

    def _claim_natural_key(self, item: Item, position: int, raw: bytes | None) -> None:
        """Two records of one object with the same natural key: the later one wins (it overwrites the
        item), the earlier one is reported, and the count of written records stays exact."""
        partition = item["pk"]["S"]
        digest = natural_digest(partition)
        earlier = self._natural.get(digest)
        # A JSON Lines line is gone once read, so a prefix is kept; a .json text is kept whole anyway.
        self._natural[digest] = (position, raw[:_NATURAL_RAW_KEPT] if raw is not None else None)
        if earlier is None:
            return
        earlier_position, earlier_prefix = earlier
        earlier_raw = self._quote(earlier_position, earlier_prefix) or b""
        self.written -= 1
        self.report.add(
            earlier_position,
            Reason.DUPLICATE_NATURAL_KEY,
            f"natural key {partition!r} again at position {position}, which wins",
            earlier_raw,
        )

    def wrote(self, partition: str) -> bool:
        """Whether this version wrote the natural-key item `partition` (its leftovers are the others)."""
        return natural_digest(partition) in self._natural

    def _clear(self, position: int, writer: BatchWriter | None = None) -> None:
        """Delete what an older version may have left at a position this version leaves empty."""
        if position <= self._resume_after:
            return  # the interrupted attempt cleared it
        if self._position_keyed and (self._stale_up_to is None or position <= self._stale_up_to):
            (writer or self._writer).delete(record_key(self._event.key, position))

    def _refuse(self, item: Item, message: str) -> None:
        position = int(item["position"]["N"])
        if not self._position_keyed:
            # Not written after all: an older version's item under that key is a leftover to remove.
            digest = natural_digest(item["pk"]["S"])
            if self._natural.get(digest, (None,))[0] == position:
                del self._natural[digest]
        self._refused.append(position)
        self.written -= 1
        self.report.add(
            position,
            Reason.REFUSED_BY_DYNAMODB,
            message,
            # A pool of writers reports a refusal after later lines were read (their text is gone):
            # then the record is quoted from the item that was refused.
            self._quote(position, self._raw.get(position)) or _record_of(item["data"]),
        )

    def _clear_refused_positions(self) -> None:
        if not self._refused:
            return
        # A second writer: the first one calls `_refuse` while it is sending.
        cleaner = self._services.store.writer()
        for position in self._refused:
            self._clear(position, cleaner)
        cleaner.flush()


def _record_of(value: AttributeValue) -> Any:
    """The record an item's `data` attribute holds (numbers as their text), to quote it in a report."""
    kind, inner = next(iter(value.items()))
    if kind == "M":
        return {name: _record_of(member) for name, member in inner.items()}
    if kind == "L":
        return [_record_of(member) for member in inner]
    if kind == "NULL":
        return None
    return inner  # S, N (text), BOOL


def natural_digest(partition: str) -> bytes:
    # 16 bytes per natural key this version wrote, instead of the key itself (up to 2 KB).
    return hashlib.blake2b(partition.encode("utf-8", "surrogatepass"), digest_size=16).digest()
