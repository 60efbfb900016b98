"""The exhaustive convergence checker: every history of one key up to a bound, every delivery schedule.

For one operation sequence (a history of one key, see `s3_model.py`) it explores every interleaving of
the operations with the deliveries of their events: each event delivered after its operation, in any
order, plus at most one extra delivery of any event at any later point (a duplicate, or an archive
replay days later) and at most one failed attempt (a crash in the middle of a write after which the
attempt gives its lease back, or a kill that leaves the lease held until it expires, while other events
find the object busy and announce themselves). Wherever every operation is done, every event has been
delivered and no lease is held, the table must hold exactly the records of the key's current version.

Pruning, and why it is sound: the use cases are deterministic functions of (the bucket, the table, the
event, the clock); the bucket is determined by how many operations were performed. Two schedules that
reach the same (operations performed, table, rejects reports, clock, events delivered, duplicate and
failure budgets left) have identical futures, so that state is explored once and its result (the
number of complete schedules below it) is reused. The count of schedules reported is exact: it counts
every distinct schedule, explored or reused.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from functions.core.domain.datasets import DatasetRegistry
from functions.core.domain.events import ObjectEvent
from functions.core.domain.table_layout import STATE_PREFIX, record_partition
from functions.core.use_cases.delete_sync import delete_object
from functions.core.use_cases.ingest import ingest_object
from functions.core.use_cases.ports import LeasePolicy, Services

from .memory_backend import MemoryRecordStore, MemoryReports
from .s3_model import KeyHistory, ModelReader, jsonl

LEASE_SECONDS = 300.0
START = 1_800_000_000.0


@dataclass(frozen=True)
class Scenario:
    """A kind of bucket and dataset: how to build a put's body and what the table should hold."""

    name: str
    key: str
    versioned: bool
    bodies: tuple[list[Any], ...]  # the records of put #j are bodies[j % len(bodies)] (None: not JSON)
    table_key: Callable[[str, int, dict[str, Any]], tuple[str, str]]

    def body(self, put_index: int) -> list[Any]:
        return self.bodies[put_index % len(self.bodies)]


def _positional(key: str, position: int, record: dict[str, Any]) -> tuple[str, str]:
    return (record_partition(key, position), f"{position:012d}")


def _natural(key: str, position: int, record: dict[str, Any]) -> tuple[str, str]:
    return (f"people#{record['Email']}", "record")


def _person(email: str, n: int) -> dict[str, Any]:
    return {"Name": f"person {n}", "Role": "dev", "Email": f"{email}@example.com"}


# Puts alternate between shapes so that every overwrite changes something: longer, shorter, a record
# that moves position, a line that is rejected where an older version had a record.
POSITIONAL_BODIES = ([{"put": 0}], [{"put": 1}, {"put": 1, "n": 2}], [None, {"put": 2}])
NATURAL_BODIES = ([_person("a", 0)], [_person("a", 1), _person("b", 1)], [None, _person("b", 2)])

SCENARIOS = {
    "versioned": Scenario("versioned", "data/a.jsonl", True, POSITIONAL_BODIES, _positional),
    "unversioned": Scenario("unversioned", "data/a.jsonl", False, POSITIONAL_BODIES, _positional),
    "versioned-natural-key": Scenario(
        "versioned-natural-key", "people/a.jsonl", True, NATURAL_BODIES, _natural
    ),
}


def operation_sequences(versioned: bool, length: int) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """Every sequence of `length` operations on one key that S3 accepts (an operation with nothing to
    act on is left out, as S3 would publish nothing)."""

    def extend(
        prefix: tuple[tuple[Any, ...], ...], versions: list[bool]
    ) -> Iterator[tuple[tuple[Any, ...], ...]]:
        # `versions`: the key's versions, oldest first; True for an object version, False for a marker.
        if len(prefix) == length:
            yield prefix
            return
        choices: list[tuple[tuple[Any, ...], list[bool]]] = []
        if versioned:
            choices.append((("put",), [*versions, True]))
            choices.append((("delete",), [*versions, False]))
            if versions and versions[-1]:
                choices.append((("expire-current",), [*versions, False]))
            for index in range(len(versions)):
                choices.append((("delete-version", index), versions[:index] + versions[index + 1 :]))
            for index in range(len(versions) - 1):
                choices.append((("expire-noncurrent", index), versions[:index] + versions[index + 1 :]))
        else:
            choices.append((("put",), [True]))
            if versions:
                choices.append((("delete",), []))
                choices.append((("expire-current",), []))
        for operation, after in choices:
            yield from extend((*prefix, operation), after)

    yield from extend((), [])


def perform(history: KeyHistory, scenario: Scenario, operation: tuple[Any, ...]) -> dict[str, Any]:
    kind = operation[0]
    if kind == "put":
        history.puts += 1
        return history.put(jsonl(scenario.body(history.puts - 1)))
    if kind in ("delete", "expire-current"):
        event = history.delete(reason="DeleteObject" if kind == "delete" else "Lifecycle Expiration")
        assert event is not None
        return event
    reason = "DeleteObject" if kind == "delete-version" else "Lifecycle Expiration"
    return history.delete_version(operation[1], reason=reason)


@dataclass
class Result:
    schedules: int = 0
    states: int = 0
    failures: list[str] = field(default_factory=list)


class Checker:
    """Explores one operation sequence of one scenario (see the module docstring)."""

    def __init__(
        self, scenario: Scenario, operations: tuple[tuple[Any, ...], ...], *, faults: bool = True
    ) -> None:
        self.scenario = scenario
        self.operations = operations
        self.faults = faults
        self.datasets = DatasetRegistry.load()
        # The bucket after k operations, and the events published so far.
        self.histories: list[KeyHistory] = []
        self.events: list[dict[str, Any]] = []
        self.lines: dict[bytes, list[Any]] = {}
        history = KeyHistory(scenario.key, scenario.versioned)
        self.histories.append(_copy_history(history))
        for operation in operations:
            event = perform(history, scenario, operation)
            self.events.append(event)
            self.histories.append(_copy_history(history))
        for j in range(history.puts):
            self.lines[jsonl(scenario.body(j))] = scenario.body(j)
        self.parsed = [ObjectEvent.from_eventbridge(e) for e in self.events]
        self.replays = [
            ObjectEvent.from_eventbridge({**e, "replay-name": "replay-days-later"}) for e in self.events
        ]
        self.store = MemoryRecordStore()
        self.reports = MemoryReports()
        self.result = Result()
        self._memo: dict[tuple[Any, ...], int] = {}

    def run(self) -> Result:
        start = (0, frozenset(), False, not self.faults, 0, self._freeze())
        self.result.schedules = self._explore(start)
        self.result.states = len(self._memo)
        return self.result

    # --- exploration -----------------------------------------------------------------------------
    def _freeze(self) -> bytes:
        store = self.store
        return pickle.dumps(
            (store.states, store.items, sorted(store.index_lag), sorted(self.reports.reports.items()))
        )

    def _thaw(self, frozen: bytes) -> None:
        states, items, lag, reports = pickle.loads(frozen)
        self.store.restore_from(states, items, set(lag))
        self.reports.reports = dict(reports)

    def _explore(self, node: tuple[Any, ...]) -> int:
        known = self._memo.get(node)
        if known is None:
            known = self._memo[node] = self._search(node)
        return known

    def _search(self, node: tuple[Any, ...]) -> int:
        performed, delivered, duplicated, failed, expiries, frozen = node
        schedules = 0
        self._thaw(frozen)
        now = START + expiries * (LEASE_SECONDS + 1)
        lease_held = any(
            "lease_token" in state and float(state["lease_expires"]["N"]) >= now
            for state in self.store.states.values()
        )
        if performed == len(self.operations) and len(delivered) == len(self.events) and not lease_held:
            self._check(node)
            schedules += 1
        moves: list[tuple[str, int]] = []
        if performed < len(self.operations):
            moves.append(("perform", performed))
        for index in range(performed):
            if index not in delivered:
                moves.append(("deliver", index))
                if not failed:
                    moves.append(("crash", index))
                    moves.append(("kill", index))
            elif not duplicated:
                moves.append(("duplicate", index))
        if lease_held:
            moves.append(("expire", 0))
        for move, index in moves:
            self._thaw(frozen)
            child = self._step(node, move, index)
            # A step that changed nothing (a busy retry that found the object as it was) is no new schedule.
            if child is not None and child != node:
                schedules += self._explore(child)
        return schedules

    def _step(self, node: tuple[Any, ...], move: str, index: int) -> tuple[Any, ...] | None:
        performed, delivered, duplicated, failed, expiries, _ = node
        if move == "perform":
            return (performed + 1, delivered, duplicated, failed, expiries, self._freeze())
        if move == "expire":
            return (performed, delivered, duplicated, failed, expiries + 1, self._freeze())
        services = self._services(performed, expiries, index, attempt=move)
        event = self.replays[index] if move == "duplicate" else self.parsed[index]
        if move in ("crash", "kill"):
            self.store.fault = move
        try:
            (ingest_object if event.is_created else delete_object)(services, event)
        except Exception as failure:  # the attempt failed: Lambda retries the event later
            if move in ("deliver", "duplicate") and not _retryable(failure):
                self.result.failures.append(f"{self._describe(node)} {move} e{index}: {failure!r}")
                return None
            self.store.down = False
            if move in ("crash", "kill"):
                return (performed, delivered, duplicated, True, expiries, self._freeze())
            return (performed, delivered, duplicated, failed, expiries, self._freeze())
        if move in ("crash", "kill"):
            # The attempt ended before writing anything (stale, or nothing to write): no fault happened.
            self.store.fault = None
            return None
        if move == "duplicate":
            return (performed, delivered, True, failed, expiries, self._freeze())
        return (performed, delivered | {index}, duplicated, failed, expiries, self._freeze())

    def _services(self, performed: int, expiries: int, index: int, *, attempt: str) -> Services:
        clock = START + expiries * (LEASE_SECONDS + 1)
        return Services(
            store=self.store,
            objects=ModelReader(self.histories[performed]),
            reports=self.reports,
            datasets=self.datasets,
            max_json_bytes=1024 * 1024,
            lease=LeasePolicy(lease_seconds=LEASE_SECONDS, max_wait_seconds=0.0),
            clock=lambda: clock,
            sleep=lambda _: None,
            # Lambda retries an invocation with its request id; a duplicate delivery is another invocation.
            invocation_id=f"e{index}-{'b' if attempt == 'duplicate' else 'a'}",
        )

    def _check(self, node: tuple[Any, ...]) -> None:
        final = self.histories[-1]
        expected: dict[tuple[str, str], Any] = {}
        current = final.current
        if current is not None and current.body is not None:
            for position, line in enumerate(self.lines[current.body], start=1):
                if line is not None:
                    expected[self.scenario.table_key(final.key, position, line)] = line
        found = {
            key: _plain(item["data"])
            for key, item in self.store.items.items()
            if not key[0].startswith(STATE_PREFIX)
        }
        if found != expected:
            self.result.failures.append(f"{self._describe(node)}: table {found} != bucket {expected}")

    def _describe(self, node: tuple[Any, ...]) -> str:
        return f"[{self.scenario.name}] {list(self.operations)} delivered={sorted(node[1])}"


def _retryable(failure: Exception) -> bool:
    from functions.core.domain.object_state import TransientStoreError

    return isinstance(failure, TransientStoreError)


def _plain(attribute: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as the JSON value it was converted from (enough for these records)."""
    ((kind, value),) = attribute.items()
    if kind == "M":
        return {name: _plain(inner) for name, inner in value.items()}
    if kind == "L":
        return [_plain(inner) for inner in value]
    if kind == "N":
        return int(value)
    if kind == "NULL":
        return None
    return value


def _copy_history(history: KeyHistory) -> KeyHistory:
    return KeyHistory(history.key, history.versioned, list(history.versions), history.changes, history.puts)
