"""One range of a fan-out, as the message the range worker receives (fan_out.py, range_ingest.py).

The message carries everything the worker needs without reading the event again: the event, the lease
token the fan-out runs under, what the coordinator knew of the object's state before it, and the range.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from functions.core.domain.byte_ranges import ByteRange
from functions.core.domain.events import ObjectEvent
from functions.core.domain.object_state import ObjectState

TASK_VERSION: Final = 1
# Where ranges keep their rejects until the commit merges them (in the rejects bucket, outside rejects/).
PARTS_PREFIX: Final = "fanout-parts/"
# The state fields a finalizer needs to commit as the coordinator would have (mirror_object.finish_version).
_PRIOR_FIELDS: Final = ("sequencer", "last_position", "rejected_count", "natural_owned", "dirty", "layout")


class InvalidTaskError(ValueError):
    """A message that is not a range task of this version: dropped and counted, never retried."""


@dataclass(frozen=True, slots=True)
class RangeTask:
    event: ObjectEvent
    token: str
    prior: ObjectState
    dataset: str
    ingested_at: str
    ranges: int
    byte_range: ByteRange
    newlines_before: int  # newlines in [0, byte_range.read_from): numbers the range's lines
    # The whole object, resumed from the attempt's checkpoint (an ingest that ran out of time).
    continuation: bool = False

    @property
    def stale_up_to(self) -> int | None:
        """How far an older version's items may reach (None: unknown, after an interrupted attempt)."""
        return None if self.prior.dirty else self.prior.last_position

    @property
    def part_key(self) -> str:
        """Where this range's rejects wait for the finalizer (in the rejects bucket, outside rejects/)."""
        owner = hashlib.sha256(self.event.owner.encode("utf-8", "surrogatepass")).hexdigest()
        version = self.event.sequencer.rstrip("0") or "0"  # as report_key: without the right padding
        return f"{PARTS_PREFIX}{owner}/{version}/{self.byte_range.index:05d}.json"

    def part_key_of(self, index: int) -> str:
        return dataclasses.replace(self, byte_range=ByteRange(index, 0, 0)).part_key

    def to_json(self) -> str:
        prior = {name: getattr(self.prior, name) for name in _PRIOR_FIELDS}
        return json.dumps(
            {
                "v": TASK_VERSION,
                "event": dataclasses.asdict(self.event),
                "token": self.token,
                "prior": prior,
                "dataset": self.dataset,
                "ingested_at": self.ingested_at,
                "ranges": self.ranges,
                "range": [self.byte_range.index, self.byte_range.start, self.byte_range.end],
                "newlines_before": self.newlines_before,
                "continuation": self.continuation,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, body: str) -> RangeTask:
        try:
            data: dict[str, Any] = json.loads(body)
            if data.get("v") != TASK_VERSION:
                raise InvalidTaskError(f"not a range task of version {TASK_VERSION}")
            index, start, end = data["range"]
            return cls(
                event=ObjectEvent(**data["event"]),
                token=str(data["token"]),
                prior=ObjectState(**{name: data["prior"][name] for name in _PRIOR_FIELDS}),
                dataset=str(data["dataset"]),
                ingested_at=str(data["ingested_at"]),
                ranges=int(data["ranges"]),
                byte_range=ByteRange(int(index), int(start), int(end)),
                newlines_before=int(data["newlines_before"]),
                continuation=bool(data.get("continuation", False)),
            )
        except InvalidTaskError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as invalid:
            raise InvalidTaskError(f"malformed range task: {invalid!r}"[:300]) from None
