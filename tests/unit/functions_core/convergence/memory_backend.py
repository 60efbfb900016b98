"""An in-memory `RecordStore` with the semantics of `DynamoRecordStore` on a DynamoDB table.

It exists so the exhaustive convergence checker can run millions of events in CI. What it must mirror —
conditional updates of the state item, BatchWriteItem's last-write-wins per key, strongly consistent
queries, an eventually consistent `by-owner` index — is pinned by `test_memory_backend.py`, which runs
the same histories against both stores (on moto) and compares every item.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from functions.core.adapters.dynamodb_batch_writer import BATCH_WRITE_LIMIT
from functions.core.adapters.dynamodb_record_store import ATTEMPT_ATTRIBUTES, FANOUT_ATTRIBUTES
from functions.core.domain.object_state import (
    Acquired,
    Checkpoint,
    Commit,
    LeaseLostError,
    ObjectState,
    OthersWritingError,
    RangeSummary,
    Refused,
)
from functions.core.domain.table_layout import (
    LAYOUT,
    NATURAL_KEY_SORT,
    POSITION_WIDTH,
    Item,
    Key,
    position_sort_key,
    state_key,
)


class StoreDown(Exception):
    """The simulated table refuses every call (the processor lost its network, or was frozen)."""


class CrashAfterWrites(Exception):
    """A simulated crash of the processing attempt in the middle of a BatchWriteItem."""


def _key(pk: str, sk: str) -> tuple[str, str]:
    return (pk, sk)


class MemoryRecordStore:
    """`RecordStore` over two dicts. `fault` injects a crash mid-write: "crash" raises in the writer
    (the attempt can still release its lease), "kill" also takes the store down until `restore()`.
    The fault strikes in the first batch write after `fault_skip` batches went through whole (a crash
    after a checkpoint), or at a `crash_point` (e.g. right after the range tasks were sent)."""

    def __init__(self) -> None:
        self.states: dict[str, Item] = {}
        self.items: dict[tuple[str, str], Item] = {}
        self.index_lag: set[tuple[str, str]] = set()  # keys the by-owner index does not list yet
        self.fault: str | None = None
        self.fault_skip = 0
        self.fault_loses_single = False  # a batch of one dies before it lands (else right after)
        self.down = False

    # --- snapshots (the checker branches from them) ---------------------------------------------
    def snapshot(self) -> tuple[Any, ...]:
        return copy.deepcopy((self.states, self.items, self.index_lag))

    def restore(self, snapshot: tuple[Any, ...]) -> None:
        self.restore_from(*copy.deepcopy(snapshot))

    def restore_from(
        self, states: dict[str, Item], items: dict[tuple[str, str], Item], lag: set[Any]
    ) -> None:
        """Take these (fresh, unshared) dicts as the table's contents."""
        self.states, self.items, self.index_lag = states, items, lag
        self.fault = None
        self.fault_skip = 0
        self.fault_loses_single = False
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreDown("the table is unreachable")

    def armed(self) -> bool:
        """Whether the injected fault strikes in this batch (one more batch goes through otherwise)."""
        if self.fault is None:
            return False
        if self.fault_skip:
            self.fault_skip -= 1
            return False
        return True

    def crash_point(self, what: str) -> None:
        """The attempt dies here if a fault is armed (not counted as a batch)."""
        if self.fault is not None and not self.fault_skip:
            self._strike(f"simulated crash {what}")

    def _strike(self, message: str) -> None:
        if self.fault == "kill":
            self.down = True
        self.fault = None
        raise CrashAfterWrites(message)

    # --- object state -----------------------------------------------------------------------------
    def acquire(
        self, object_id: str, sequencer: str, token: str, *, now: float, lease_seconds: float, natural: bool
    ) -> Acquired | Refused:
        self._check()
        old = self.states.get(object_id, {})
        current = ObjectState.from_item(old)
        allowed = (
            (current.sequencer is None or current.sequencer <= sequencer)
            and (current.pending_sequencer is None or current.pending_sequencer <= sequencer)
            and (
                "lease_token" not in old
                or float(old["lease_expires"]["N"]) < now
                or (current.lease_token == token and current.fanout_token != token)
            )
        )
        if not allowed:
            return Refused(current=current, stale=current.is_newer_than(sequencer))
        new = copy.deepcopy(old) or dict(state_key(object_id))
        new.update(
            lease_token={"S": token},
            lease_expires={"N": repr(now + lease_seconds)},
            lease_sequencer={"S": sequencer},
            writer_sequencer={"S": sequencer},
            dirty={"BOOL": True},
        )
        if natural:
            new["natural_owned"] = {"BOOL": True}
        for name in FANOUT_ATTRIBUTES:
            new.pop(name, None)
        self.states[object_id] = new
        return Acquired(prior=ObjectState.from_item(old))

    def announce(self, object_id: str, sequencer: str) -> None:
        self._check()
        state = self.states.setdefault(object_id, dict(state_key(object_id)))
        pending = state.get("pending_sequencer")
        if pending is None or pending["S"] < sequencer:
            state["pending_sequencer"] = {"S": sequencer}

    def superseded(self, object_id: str, sequencer: str) -> bool:
        self._check()
        return ObjectState.from_item(self.states.get(object_id)).is_newer_than(sequencer)

    def release(self, object_id: str, token: str, *, dirty: bool) -> None:
        self._check()
        state = self.states.get(object_id)
        if state is None or state.get("lease_token", {}).get("S") != token:
            return
        state["dirty"] = {"BOOL": dirty}
        for name in ("lease_token", "lease_expires", "lease_sequencer"):
            state.pop(name, None)

    def _held(self, object_id: str, token: str) -> Item:
        state = self.states.get(object_id)
        if state is None or state.get("lease_token", {}).get("S") != token:
            raise LeaseLostError(f"lease on {object_id} expired before commit")
        return state

    def commit(self, object_id: str, token: str, commit: Commit, *, writer: str | None = None) -> None:
        self._check()
        state = self._held(object_id, token)
        if writer is not None:
            writers = state.get("fanout_writers", {"M": {}})["M"]
            if len(writers) != 1 or writer not in writers:
                raise OthersWritingError(f"another worker of the fan-out of {object_id} is writing")
        state.update(
            sequencer={"S": commit.sequencer},
            status={"S": str(commit.status)},
            event_id={"S": commit.event_id},
            committed_at={"S": commit.committed_at},
            record_count={"N": str(commit.record_count)},
            rejected_count={"N": str(commit.rejected_count)},
            last_position={"N": str(commit.last_position)},
            dirty={"BOOL": False},
            layout={"N": str(LAYOUT)},
        )
        for name in ("lease_token", "lease_expires", "lease_sequencer", *ATTEMPT_ATTRIBUTES):
            state.pop(name, None)
        for name, value in (
            ("version_id", commit.version_id),
            ("etag", commit.etag),
            ("dataset", commit.dataset),
        ):
            if value is None:
                state.pop(name, None)
            else:
                state[name] = {"S": value}
        if commit.natural_owned:
            state["natural_owned"] = {"BOOL": True}
        else:
            state.pop("natural_owned", None)

    def advance(
        self, object_id: str, token: str, *, sequencer: str, event_id: str, committed_at: str
    ) -> None:
        self._check()
        state = self._held(object_id, token)
        state.update(
            sequencer={"S": sequencer},
            event_id={"S": event_id},
            committed_at={"S": committed_at},
            dirty={"BOOL": False},
        )
        for name in ("lease_token", "lease_expires", "lease_sequencer", *ATTEMPT_ATTRIBUTES):
            state.pop(name, None)

    def checkpoint(self, object_id: str, token: str, checkpoint: Checkpoint) -> None:
        self._check()
        state = self._held(object_id, token)
        state.update(
            progress_position={"N": str(checkpoint.position)},
            progress_sequencer={"S": checkpoint.sequencer},
            progress_version={"S": checkpoint.content},
        )

    # --- fan-out (mirrors DynamoRecordStore's registrations of writers) -------------------------
    def start_fanout(self, object_id: str, token: str, *, ranges: int, lease_expires: float) -> None:
        self._check()
        state = self._held(object_id, token)
        state.update(
            fanout_token={"S": token},
            fanout_ranges={"N": str(ranges)},
            fanout_done={"M": {}},
            lease_expires={"N": repr(lease_expires)},
        )
        state.setdefault("fanout_writers", {"M": {}})
        state.pop("fanout_finalizer", None)

    def _fanout(self, object_id: str, token: str) -> Item | None:
        self._check()
        state = self.states.get(object_id)
        if state is None or state.get("lease_token", {}).get("S") != token:
            return None
        if state.get("fanout_token", {}).get("S") != token:
            return None
        return state

    def join_fanout(
        self, object_id: str, token: str, writer: str, *, index: int, deadline: float
    ) -> ObjectState | None:
        state = self._fanout(object_id, token)
        if state is None:
            return None
        claimed = state.get("fanout_finalizer")
        if claimed is not None and claimed["N"] != str(index):
            return None
        state["fanout_writers"]["M"][writer] = {"N": repr(deadline)}
        if float(state["lease_expires"]["N"]) <= deadline:
            state["lease_expires"] = {"N": repr(deadline)}
        return ObjectState.from_item(state)  # immutable: it keeps nothing of the item

    def leave_fanout(
        self,
        object_id: str,
        token: str,
        writer: str,
        *,
        done: RangeSummary | None = None,
        gone: Iterable[str] = (),
        drop_claim: bool = False,
    ) -> ObjectState | None:
        state = self._fanout(object_id, token)
        if state is None:
            return None
        if done is not None:
            state["fanout_done"]["M"][str(done.index)] = done.to_attribute()
        for name in (writer, *gone):
            state["fanout_writers"]["M"].pop(name, None)
        if drop_claim:
            state.pop("fanout_finalizer", None)
        return ObjectState.from_item(state)

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
    ) -> bool:
        state = self._fanout(object_id, token)
        gone = list(gone)
        if state is None or "fanout_finalizer" in state:
            return False
        writers = state["fanout_writers"]["M"]
        if len(state["fanout_done"]["M"]) != ranges or len(writers) != len(gone):
            return False
        if any(name not in writers for name in gone):
            return False
        for name in gone:
            del writers[name]
        state["fanout_finalizer"] = {"N": str(index)}
        writers[writer] = {"N": repr(deadline)}
        return True

    def abandon_fanout(self, object_id: str, token: str, writer: str | None, *, gone: Iterable[str]) -> bool:
        state = self._fanout(object_id, token)
        if state is None:
            return False
        removed = ([writer] if writer is not None else []) + list(gone)
        writers = state.get("fanout_writers", {"M": {}})["M"]
        if len(writers) != len(removed) or any(name not in writers for name in removed):
            if writer is not None:
                writers.pop(writer, None)
            return False
        for name in removed:
            del writers[name]
        state["dirty"] = {"BOOL": True}
        for name in ("lease_token", "lease_expires", "lease_sequencer"):
            state.pop(name, None)
        return True

    def has_state(self, object_id: str) -> bool:
        self._check()
        return "sequencer" in self.states.get(object_id, {})

    # --- records ------------------------------------------------------------------------------------
    def writer(self, on_refused: Callable[[Item, str], None] | None = None) -> MemoryBatchWriter:
        self._check()
        return MemoryBatchWriter(self)

    def positions_after(self, partition: str, position: int, owner: str) -> Iterator[Key]:
        self._check()
        low, high = position_sort_key(position + 1), "9" * POSITION_WIDTH
        found = sorted(
            k
            for k, item in self.items.items()
            if k[0] == partition and low <= k[1] <= high and item.get("owner", {}).get("S") == owner
        )
        return iter([{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in found])

    def owned_natural_keys(self, owner: str) -> Iterator[Key]:
        self._check()
        found = [
            k
            for k, item in self.items.items()
            if k[1] == NATURAL_KEY_SORT
            and item.get("owner", {}).get("S") == owner
            and k not in self.index_lag
        ]
        self.index_lag.clear()  # the index catches up after one look
        return iter([{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in sorted(found)])

    def delete_owned(self, keys: Iterable[Key], owner: str) -> int:
        self._check()
        deleted = 0
        for key in keys:
            k = _key(key["pk"]["S"], key["sk"]["S"])
            item = self.items.get(k)
            if item and item.get("owner", {}).get("S") == owner:
                del self.items[k]
                deleted += 1
        return deleted


class MemoryBatchWriter:
    """BatchWriteItem's behaviour: buffered, 25 requests per call, the last request for a key wins."""

    def __init__(self, store: MemoryRecordStore) -> None:
        self._store = store
        self._pending: dict[tuple[str, str], Item | None] = {}
        self.requests = 0

    def put(self, item: Item) -> None:
        self._add(_key(item["pk"]["S"], item["sk"]["S"]), item)

    def delete(self, key: Key) -> None:
        self._add(_key(key["pk"]["S"], key["sk"]["S"]), None)

    def _add(self, key: tuple[str, str], item: Item | None) -> None:
        self._pending[key] = item
        if len(self._pending) >= BATCH_WRITE_LIMIT:
            self._send()

    def flush(self) -> None:
        if self._pending:
            self._send()

    def close(self) -> None:
        self._pending = {}

    def _send(self) -> None:
        store = self._store
        store._check()
        batch, self._pending = self._pending, {}
        self.requests += 1
        armed = store.armed()
        if armed and len(batch) == 1 and store.fault_loses_single:
            store._strike("simulated crash before a write of one item landed")
        for count, (key, item) in enumerate(batch.items()):
            if armed and count == 1:
                # Half a batch is written when the attempt dies: the table is left in between.
                store._strike("simulated crash in the middle of a write")
            if item is None:
                store.items.pop(key, None)
            else:
                store.items[key] = item
        if armed:  # a batch of one: die right after it
            store._strike("simulated crash right after a write")


class MemoryReports:
    def __init__(self) -> None:
        self.reports: dict[str, bytes] = {}

    def put(self, key: str, body: bytes) -> None:
        self.reports[key] = body

    def get(self, key: str) -> bytes | None:
        return self.reports.get(key)

    def delete(self, key: str) -> None:
        self.reports.pop(key, None)


class MemoryQueue:
    """The range work queue: task bodies in the order sent (the checker delivers them in any order).
    An armed fault strikes right after a send: the tasks are out, the attempt that sent them dies; with
    `fail_before_send`, right before it instead: SendMessage failed, nothing was sent."""

    def __init__(self, store: MemoryRecordStore) -> None:
        self.store = store
        self.bodies: list[str] = []
        self.fail_before_send = False

    def send(self, bodies: list[str]) -> None:
        if self.fail_before_send:
            self.store.crash_point("sending the range tasks (SendMessage failed)")
        self.bodies.extend(bodies)
        self.store.crash_point("right after sending the range tasks")
